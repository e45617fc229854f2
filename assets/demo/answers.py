"""The demo's generation dataset: the demo tickets answered by a support desk (replies with planted defects), for
fine-tuning a causal LM on prompts and responses."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from assets.demo.declarations import write_demo_dataset
from assets.demo.tickets import generate_tickets

ANSWERS_DATASET = "answers"
REPLIES: dict[str, tuple[str, list[str]]] = {
    "vpn_access": ("the vpn", ["restart the vpn client", "sign in again", "switch to the office network"]),
    "password_reset": ("your password", ["open the self-service portal", "choose reset password", "check your inbox"]),
    "billing_invoice": (
        "your invoice",
        ["we checked the charge", "a corrected invoice follows", "no action is needed"],
    ),
    "hardware_failure": ("your device", ["bring it to the service desk", "we book a repair", "a loan device is ready"]),
    "software_install": ("the installation", ["open the software centre", "pick the package", "restart afterwards"]),
    "email_delivery": ("your mail", ["check the spam folder", "we released the queue", "resend the message"]),
    "printer_issue": ("the printer", ["clear the paper tray", "reinstall the driver", "print a test page"]),
    "access_request": ("your access", ["your manager approves it", "we grant the role", "sign in again tomorrow"]),
    "network_outage": ("the network", ["the outage is known", "engineers are on it", "we post updates hourly"]),
    "data_request": ("your data request", ["we log the request", "legal reviews it", "you get the export by mail"]),
}


@dataclass(frozen=True)
class AnswerDefects:
    """How many replies of each kind of defect were planted (the prompts keep the tickets' own defects)."""

    empty_reply: int = 0
    cut_off_reply: int = 0
    reply_with_email: int = 0
    reply_repeating_prompt: int = 0


def generate_answers(rows: int = 600, seed: int = 11) -> tuple[list[dict[str, str]], AnswerDefects]:
    """Tickets with the desk's reply: the category's two steps in order, sometimes defective."""
    rng = random.Random(seed)
    tickets, _ = generate_tickets(rows, seed)
    counts = dict.fromkeys(AnswerDefects.__dataclass_fields__, 0)
    records = []
    for ticket in tickets:
        topic, steps = REPLIES.get(ticket["category"], ("your request", ["we look into it", "we reply soon"]))
        first, second = sorted(rng.sample(range(len(steps)), 2))
        reply = f"thanks for writing about {topic}: {steps[first]}, then {steps[second]}."
        defect = rng.random()
        if defect < 0.02:
            reply, counts["empty_reply"] = "", counts["empty_reply"] + 1
        elif defect < 0.04:
            reply, counts["cut_off_reply"] = (
                f"thanks for writing about {topic}: {steps[first]} and",
                counts["cut_off_reply"] + 1,
            )
        elif defect < 0.09:
            reply += " write to desk.agent@example.com if needed."
            counts["reply_with_email"] += 1
        elif defect < 0.10 and ticket["body"].strip():
            reply, counts["reply_repeating_prompt"] = ticket["body"], counts["reply_repeating_prompt"] + 1
        records.append({"ticket_id": ticket["ticket_id"], "question": ticket["body"], "reply": reply})
    return records, AnswerDefects(**counts)


def write_answers_drop(folder: Path, rows: int = 600, seed: int = 11) -> AnswerDefects:
    """Write the answered tickets as one JSON Lines drop."""
    folder.mkdir(parents=True, exist_ok=True)
    records, defects = generate_answers(rows, seed)
    (folder / "answered.ndjson").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return defects


DEMO_SFT = {  # sized for 2 CPU cores: one epoch of LoRA on SmolLM2-135M takes about 2 minutes on 190 examples
    "max_epochs": 1,
    "learning_rate": 1e-3,
    "lora_rank": 16,
    "lora_alpha": 32,
    "batch_size": 8,
    "max_length": 160,
    "eval_prompts": 8,
    "max_new_tokens": 32,
}


def write_answers_declaration(datasets_dir: Path, base_model: Path | None = None) -> Path:
    """Write `datasets/answers.yaml` (a generation dataset fine-tuning `base_model`, by default the shipped
    SmolLM2-135M-Instruct) unless the folder has one."""
    declaration = {
        "name": ANSWERS_DATASET,
        "description": "the demo tickets and the support desk's replies",
        "source": {"text_column": "question", "response_column": "reply", "id_column": "ticket_id"},
        "tasks": [{"name": "reply", "kind": "generation"}],
        "training": DEMO_SFT,
    }
    header = "The demo's generation dataset, declared as any dataset is; it fine-tunes {base}."
    return write_demo_dataset(datasets_dir, declaration, base_model, header=header)
