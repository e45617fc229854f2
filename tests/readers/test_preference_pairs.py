"""Preference records in the shapes preference sets are written in, and the declarations `refinery init` writes
for them read back the same way."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from assets.datasets.chat_formats import chosen_chat_format
from assets.datasets.declaration import declaration_yaml, load_dataset
from assets.datasets.generation_profile import generation_declaration, generation_profile
from assets.readers.preference_pairs import PairShapeError, split_pair
from service.logbook import DeltaAppender

QUESTION = {"role": "user", "content": "What is 2+2?"}


def test_an_ultrafeedback_record_keeps_its_prompt_once() -> None:
    chosen = [QUESTION, {"role": "assistant", "content": "4"}]
    rejected = [QUESTION, {"role": "assistant", "content": "5"}]
    assert split_pair("What is 2+2?", chosen, rejected) == ("What is 2+2?", "4", "5", None)


def test_a_conversation_answered_two_ways_keeps_its_earlier_turns_as_context() -> None:
    prompt = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}, QUESTION]
    text, chosen, rejected, context = split_pair(prompt, "4", "5")
    assert (text, chosen, rejected) == ("What is 2+2?", "4", "5") and '"hello"' in context


@pytest.mark.parametrize(
    ("prompt", "chosen", "rejected", "reason"),
    [
        ("q", "a", ["b"], "both must be text or both lists of messages"),
        (None, "a", "b", "need their prompt"),
        ("q", [QUESTION, {"role": "assistant", "content": "4"}], [{"role": "user", "content": "other"}], "ends with"),
        (
            None,
            [QUESTION, {"role": "assistant", "content": "4"}],
            [{"role": "user", "content": "x"}, {"role": "assistant", "content": "5"}],
            "different conversations",
        ),
    ],
)
def test_a_record_of_another_shape_is_refused_naming_what_is_wrong(prompt, chosen, rejected, reason: str) -> None:
    with pytest.raises(PairShapeError, match=reason):
        split_pair(prompt, chosen, rejected)


def test_init_on_text_chosen_rejected_columns_writes_a_declaration_that_reads_the_text_column(tmp_path: Path) -> None:
    sample = pl.DataFrame(
        {"text": ["how do i reset it?"] * 3, "chosen": ["hold the button."] * 3, "rejected": ["no."] * 3}
    )
    chat = chosen_chat_format(sample)
    declaration = generation_declaration("pairs", generation_profile(sample, chat), chat.mapping, None)
    (tmp_path / "pairs.yaml").write_text(declaration_yaml(declaration))
    mapping = load_dataset(tmp_path / "pairs.yaml").mapping
    assert (mapping.text_column, mapping.chosen_column, mapping.rejected_column) == ("text", "chosen", "rejected")


def test_one_flush_of_labels_ratings_and_corrections_keeps_every_row(tmp_path: Path) -> None:
    appender = DeltaAppender(tmp_path / "lake", spool_root=tmp_path / "spool")
    rows = [
        {"prediction_id": "a", "label": "vpn", "received_at": 1.0},
        {"prediction_id": "b", "rating": "down", "received_at": 2.0},
        {"prediction_id": "c", "correction": "restart it.", "received_at": 3.0},
    ]
    appender.add("feedback", rows)
    appender.close()
    logged = pl.read_delta(str(tmp_path / "lake" / "feedback")).sort("received_at")
    assert logged.select("label", "rating", "correction").rows() == [
        ("vpn", None, None),
        (None, "down", None),
        (None, None, "restart it."),
    ]
