"""The demo's optional datasets (reply pairs for DPO, the desk's notes for continued pre-training) are declared and
generated as a user's would be: their planted defects are quarantined by the rules, and each trains, is gated and
is deployed through the same graph (a tiny causal LM stands in for SmolLM2)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import polars as pl
import pytest
import yaml

from assets.datasets.declaration import load_dataset
from assets.demo.documents import NOTES_DATASET, generate_notes, write_notes_declaration, write_notes_drop
from assets.demo.preferences import TONE_DATASET, generate_pairs, write_pairs_declaration, write_pairs_drop
from assets.storage.delta import Lake
from assets.storage.home import RefineryHome
from dagster_project.cli.demo import DemoDataset, run_demo_dataset
from trainers.registry import read_aliases, read_card

FAST_TRAINING = {"max_epochs": 2, "learning_rate": 5e-3, "max_length": 64}  # the tiny model learns in seconds


def test_the_generated_pairs_and_notes_carry_the_defects_they_report() -> None:
    pairs, pair_defects = generate_pairs(400)
    assert sum(pair["chosen"] == pair["rejected"] for pair in pairs) == pair_defects.same_answers > 0
    assert sum(not pair["rejected"].strip() for pair in pairs) == pair_defects.blank_rejected > 0
    assert sum("@example.com" in pair["chosen"] for pair in pairs) == pair_defects.chosen_with_email > 0
    notes, note_defects = generate_notes(400)
    assert sum(note["body"] == "see above" for note in notes) == note_defects.too_short > 0
    assert sum("@example.com" in note["body"] for note in notes) == note_defects.with_email > 0
    assert len({note["body"] for note in notes}) < len(notes)


def declared_for_tiny(datasets_dir: Path, write_declaration, base: Path) -> Path:
    """The demo's declaration as written, its base swapped for the tiny model and its training shortened."""
    path = write_declaration(datasets_dir, base_model=str(base))
    declaration = yaml.safe_load(path.read_text())
    declaration["training"] = {**declaration["training"], **FAST_TRAINING}
    path.write_text(yaml.safe_dump(declaration))
    return path


@pytest.mark.parametrize(
    ("name", "write_declaration", "write_drop", "rows", "kind", "rules"),
    [
        (TONE_DATASET, write_pairs_declaration, write_pairs_drop, 160, "preference", {"answers_differ"}),
        (NOTES_DATASET, write_notes_declaration, write_notes_drop, 160, "domain_lm", {"duplicate"}),
    ],
    ids=["preference", "pretraining"],
)
def test_a_demo_dataset_is_cleaned_trained_gated_and_deployed(
    home: RefineryHome, tiny_causal_lm: Path, name, write_declaration, write_drop, rows, kind, rules
) -> None:
    declare = partial(declared_for_tiny, write_declaration=write_declaration, base=tiny_causal_lm)
    run_demo_dataset(home, DemoDataset(name, "demo records", declare, write_drop), rows, log_level="WARNING")
    assert load_dataset(home.datasets / f"{name}.yaml").tasks[0].kind in ("preference", "pretraining")
    lake = Lake(home.lake_uri)
    quarantined = lake.scan("quarantine", [f"{name}-demo-v1"]).collect()
    assert rules <= set(quarantined["rule"].unique().to_list())
    kept = lake.scan("training_examples", [f"{name}-demo-v1"]).collect()
    assert kept.height + quarantined.height == rows
    texts = [column for column in ("text", "chosen", "rejected") if column in kept.columns]
    assert kept.filter(pl.any_horizontal(pl.col(c).str.contains("@example.com") for c in texts)).is_empty()
    models = home.models / name
    card = read_card(models / read_aliases(models)["production"])
    assert card["model_kind"] == kind and card["evaluation_gate"]["passed"]
