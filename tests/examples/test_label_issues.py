"""Label screening on generated tickets: planted flips are found, clean labels are left alone, and the policy moves
only train and val suspects to the quarantine."""

from __future__ import annotations

import json

import polars as pl
import pytest

from assets.examples.label_issues import (
    CONFLICTING,
    SUSPECTED,
    LabelIssueSettings,
    conflicting_duplicates,
    find_label_suspects,
    quarantine_suspects,
)
from assets.storage.records import quarantine_documents
from recipe.words import analyzed_texts
from tests.examples.label_noise import generated_tickets


@pytest.fixture(scope="module")
def tickets() -> tuple[pl.DataFrame, pl.DataFrame, list[str], set[str]]:
    examples, meant, flipped = generated_tickets(seed=5)
    analyzed = pl.DataFrame({"doc_id": examples["doc_id"], "analyzed": analyzed_texts(examples["text"].to_list())})
    return examples, analyzed, meant, flipped


def test_planted_label_flips_are_found_with_their_true_label_suggested(tickets) -> None:
    examples, analyzed, meant, flipped = tickets
    screen = find_label_suspects(examples, analyzed, LabelIssueSettings())
    found = set(screen.issues["doc_id"])
    assert screen.scanned == examples.height and set(screen.issues["kind"]) == {SUSPECTED}
    assert len(found & flipped) / len(found) >= 0.9  # precision
    assert len(found & flipped) / len(flipped) >= 0.8  # recall
    assert screen.issues["rank"].to_list() == list(range(1, len(found) + 1))
    assert screen.issues["self_confidence"].is_sorted()
    true_labels = dict(zip(examples["doc_id"], meant, strict=True))
    hits = screen.issues.filter(pl.col("doc_id").is_in(list(flipped)))
    agree = sum(true_labels[d] == s for d, s in zip(hits["doc_id"], hits["suggested_label"], strict=True))
    assert agree / hits.height >= 0.9


def test_clean_labels_are_left_alone_below_a_one_percent_false_positive_rate(tickets) -> None:
    examples, analyzed, meant, _ = tickets
    clean = examples.with_columns(pl.Series("label", meant))
    screen = find_label_suspects(clean, analyzed, LabelIssueSettings())
    assert screen.scanned == clean.height and screen.suspects <= 0.01 * clean.height


def test_quarantine_moves_train_and_val_suspects_and_only_reports_the_test_split_s(tickets) -> None:
    examples, analyzed, _, _ = tickets
    screen = find_label_suspects(examples, analyzed, LabelIssueSettings(policy="quarantine"))
    kept, rejected = quarantine_suspects(examples, screen)
    by_split = dict(screen.issues.group_by("split").agg(pl.col("action").unique()).iter_rows())
    assert by_split["test"] == ["reported"] and set(by_split["train"]) == {"quarantined"}
    moved = set(rejected["doc_id"])
    assert moved == set(screen.issues.filter(pl.col("split") != "test")["doc_id"])
    assert kept.height + rejected.height == examples.height and not moved & set(kept["doc_id"])
    assert set(rejected["rule"]) == {SUSPECTED} and set(rejected["stage"]) == {"validate"}
    first = rejected.row(0, named=True)
    assert json.loads(first["record"])["label"] != first["value"]  # the given label kept, the suggested one beside


def test_report_keeps_every_example(tickets) -> None:
    examples, analyzed, _, _ = tickets
    screen = find_label_suspects(examples, analyzed, LabelIssueSettings(policy="report"))
    kept, rejected = quarantine_suspects(examples, screen)
    assert screen.suspects > 0 and kept.equals(examples) and rejected.is_empty()
    assert set(screen.issues["action"]) == {"reported"}


def test_a_label_too_rare_to_fold_is_not_screened_and_says_why() -> None:
    examples = pl.DataFrame(
        {"doc_id": ["a", "b", "c"], "text": ["x y", "x z", "w"], "label": ["p", "p", "q"], "split": ["train"] * 3}
    )
    analyzed = examples.select("doc_id", pl.col("text").alias("analyzed"))
    screen = find_label_suspects(examples, analyzed, LabelIssueSettings())
    assert screen.scanned == 0 and screen.issues.is_empty() and "two examples" in screen.note


def test_a_duplicate_quarantined_with_another_label_than_its_kept_copy_is_reported_with_both_labels() -> None:
    documents = pl.DataFrame(
        {
            "doc_id": ["d2", "d3"],
            "text": ["vpn is down", "vpn is down"],
            "label": ["network", "billing"],
            "source": ["t.csv", "t.csv"],
            "source_row": [3, 4],
        }
    )
    quarantine = quarantine_documents(
        documents, "clean", "duplicate", "exact duplicate of an earlier document", duplicate_of=pl.lit("d1")
    )
    kept_labels = pl.DataFrame({"doc_id": ["d1"], "label": ["network"]})
    conflicts = conflicting_duplicates(quarantine, kept_labels)
    assert conflicts.select("kind", "doc_id", "given_label", "duplicate_of", "duplicate_label").rows() == [
        (CONFLICTING, "d3", "billing", "d1", "network")
    ]
    assert conflicts["source_row"].to_list() == [4]


def test_a_frozen_encoder_s_out_of_fold_head_finds_the_flips_too(tickets) -> None:
    examples, analyzed, _, flipped = tickets
    screen = find_label_suspects(examples, analyzed, LabelIssueSettings(model="encoder"))
    found = set(screen.issues["doc_id"])
    assert "frozen encoder" in screen.note
    assert len(found & flipped) / max(len(found), 1) >= 0.7 and len(found & flipped) / len(flipped) >= 0.5


def test_an_unknown_screening_model_is_refused_by_name(tickets) -> None:
    examples, analyzed, _, _ = tickets
    with pytest.raises(ValueError, match=r"label issue model 'bert': expected one of tfidf, encoder"):
        find_label_suspects(examples, analyzed, LabelIssueSettings(model="bert"))
