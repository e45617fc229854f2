"""The demo's pretraining dataset: the service desk's own notes (its terminology, in its phrasing), planted defects
included, for continued pre-training of a causal LM on the domain."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from assets.demo.answers import REPLIES
from assets.demo.declarations import write_demo_dataset

NOTES_DATASET = "desk-notes"
OPENINGS = ("when a user reports a problem with {topic}", "for tickets about {topic}", "if {topic} stops working")
CLOSINGS = ("log the steps in the ticket.", "close the ticket once the user confirms.", "escalate after two tries.")


@dataclass(frozen=True)
class NoteDefects:
    """How many notes of each kind of defect were planted."""

    too_short: int = 0
    with_email: int = 0
    repeated: int = 0


def generate_notes(documents: int = 120, seed: int = 23) -> tuple[list[dict[str, str]], NoteDefects]:
    """Notes of three or four sentences on the desk's categories, each in the desk's own words."""
    rng = random.Random(seed)
    counts = dict.fromkeys(NoteDefects.__dataclass_fields__, 0)
    categories = sorted(REPLIES)
    notes = []
    for number in range(documents):
        topic, steps = REPLIES[rng.choice(categories)]
        ordered = rng.sample(steps, len(steps))
        sentences = [f"{rng.choice(OPENINGS).format(topic=topic)}, {ordered[0]} first."]
        sentences += [f"if that does not help, {step}." for step in ordered[1 : rng.randint(2, len(ordered))]]
        sentences.append(rng.choice(CLOSINGS))
        body = " ".join(sentences)
        defect = rng.random()
        if defect < 0.03:
            body, counts["too_short"] = "see above", counts["too_short"] + 1
        elif defect < 0.06:
            body += " questions go to desk.lead@example.com."
            counts["with_email"] += 1
        elif defect < 0.09 and notes:
            body, counts["repeated"] = notes[-1]["body"], counts["repeated"] + 1
        notes.append({"note_id": f"N{number}", "body": body})
    return notes, NoteDefects(**counts)


def write_notes_drop(folder: Path, documents: int = 120, seed: int = 23) -> NoteDefects:
    """Write the notes as one CSV drop."""
    folder.mkdir(parents=True, exist_ok=True)
    notes, defects = generate_notes(documents, seed)
    pl.DataFrame(notes).write_csv(folder / "notes.csv")
    return defects


DEMO_PRETRAINING = {  # sized for 2 CPU cores: one epoch of LoRA on SmolLM2-135M over about 100 notes
    "max_epochs": 1,
    "learning_rate": 5e-4,
    "lora_rank": 16,
    "lora_alpha": 32,
    "batch_size": 8,
    "max_length": 128,
}


def write_notes_declaration(datasets_dir: Path, base_model: str | None = None) -> Path:
    """Write `datasets/desk-notes.yaml` (a pretraining dataset adapting `base_model`, by default the shipped
    SmolLM2-135M-Instruct) unless the folder has one."""
    declaration = {
        "name": NOTES_DATASET,
        "description": "the service desk's notes, in its own terminology",
        "source": {"text_column": "body", "id_column": "note_id"},
        "tasks": [{"name": "domain", "kind": "pretraining"}],
        "training": DEMO_PRETRAINING,
    }
    header = "The demo's pretraining dataset, declared as any dataset is; it adapts {base} to the notes."
    return write_demo_dataset(datasets_dir, declaration, base_model, header=header)
