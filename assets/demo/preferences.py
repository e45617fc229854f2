"""The demo's preference dataset: the demo tickets, each with the desk's reply in its house style (chosen) and a curt
one (rejected), planted defects included, for teaching a causal LM the desk's tone with DPO."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from assets.demo.answers import REPLIES
from assets.demo.declarations import write_demo_dataset
from assets.demo.tickets import generate_tickets

TONE_DATASET = "tone"
CURT_ENDINGS = ("not our problem.", "figure it out.", "read the manual.", "we cannot help with that.")


@dataclass(frozen=True)
class PairDefects:
    """How many pairs of each kind of defect were planted (the prompts keep the tickets' own defects)."""

    same_answers: int = 0
    blank_rejected: int = 0
    chosen_with_email: int = 0


def generate_pairs(rows: int = 96, seed: int = 17) -> tuple[list[dict[str, str]], PairDefects]:
    """Tickets with a chosen reply (thanks, the category's steps in order, a follow-up) and a curt rejected one."""
    rng = random.Random(seed)
    tickets, _ = generate_tickets(rows, seed)
    counts = dict.fromkeys(PairDefects.__dataclass_fields__, 0)
    records = []
    for ticket in tickets[:rows]:  # the generator adds planted duplicate tickets beyond `rows`
        topic, steps = REPLIES.get(ticket["category"], ("your request", ["we look into it", "we reply soon"]))
        first, second = sorted(rng.sample(range(len(steps)), 2))
        chosen = f"thanks for writing about {topic}: {steps[first]}, then {steps[second]}."  # the SFT demo's style
        rejected = f"{steps[first]}. {rng.choice(CURT_ENDINGS)}"
        defect = rng.random()
        if defect < 0.03:
            rejected, counts["same_answers"] = chosen, counts["same_answers"] + 1
        elif defect < 0.05:
            rejected, counts["blank_rejected"] = "   ", counts["blank_rejected"] + 1
        elif defect < 0.08:
            chosen += " write to desk.agent@example.com if needed."
            counts["chosen_with_email"] += 1
        records.append(
            {"ticket_id": ticket["ticket_id"], "prompt": ticket["body"], "chosen": chosen, "rejected": rejected}
        )
    return records, PairDefects(**counts)


def write_pairs_drop(folder: Path, rows: int = 96, seed: int = 17) -> PairDefects:
    """Write the pairs as one JSON Lines drop in TRL's prompt/chosen/rejected shape."""
    folder.mkdir(parents=True, exist_ok=True)
    records, defects = generate_pairs(rows, seed)
    (folder / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return defects


DEMO_DPO = {  # sized for 2 CPU cores: one epoch of DPO with LoRA on SmolLM2-135M over about 80 pairs; at 5e-4 the
    # policy ran so far from the SFT model (reward margin 9) that its answers' ROUGE-L halved and the gate refused it
    "max_epochs": 1,
    "learning_rate": 1e-4,
    "lora_rank": 16,
    "lora_alpha": 32,
    "batch_size": 4,
    "max_length": 128,
    "beta": 0.2,
}


def write_pairs_declaration(datasets_dir: Path, base_model: str | None = None) -> Path:
    """Write `datasets/tone.yaml` (a preference dataset tuning `base_model`: the answers demo's production model
    when there is one, else the shipped SmolLM2-135M-Instruct) unless the folder has one."""
    declaration = {
        "name": TONE_DATASET,
        "description": "the demo tickets, each with the desk's reply in its house style and a curt one",
        "source": {"id_column": "ticket_id"},
        "tasks": [{"name": "tone", "kind": "preference"}],
        "training": DEMO_DPO,
    }
    header = "The demo's preference dataset, declared as any dataset is; DPO tunes {base}."
    return write_demo_dataset(datasets_dir, declaration, base_model, header=header)
