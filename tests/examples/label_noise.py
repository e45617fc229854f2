"""Generated tickets of four topics with some labels flipped to another topic: the planted label errors."""

from __future__ import annotations

import random

import polars as pl

TOPICS = {
    "billing": [
        "invoice",
        "refund",
        "charge",
        "payment",
        "card",
        "bill",
        "overcharged",
        "subscription",
        "price",
        "receipt",
    ],
    "network": ["vpn", "wifi", "router", "connection", "internet", "latency", "dns", "outage", "cable", "firewall"],
    "printer": ["printer", "toner", "paper", "jam", "cartridge", "scan", "print", "queue", "tray", "ink"],
    "access": ["password", "login", "account", "locked", "reset", "badge", "permission", "mfa", "token", "sso"],
}
FILLER = ["please", "help", "my", "the", "is", "not", "working", "since", "today", "again", "urgent", "team", "office"]
FLIPS = 24  # of 320 examples: 7.5% noise


def generated_tickets(seed: int) -> tuple[pl.DataFrame, list[str], set[str]]:
    """320 tickets of four topics with the labels of FLIPS of them changed to another topic; the labels meant, and
    the flipped ids."""
    rng = random.Random(seed)
    rows = [
        (" ".join(rng.sample(words, 3) + rng.sample(FILLER, 4)), label)
        for label, words in TOPICS.items()
        for _ in range(80)
    ]
    rng.shuffle(rows)
    flipped = set(rng.sample(range(len(rows)), FLIPS))
    records = []
    for row, (text, label) in enumerate(rows):
        given = rng.choice([other for other in TOPICS if other != label]) if row in flipped else label
        split = ("train", "train", "train", "train", "train", "train", "train", "train", "val", "test")[row % 10]
        records.append(
            {
                "doc_id": f"d{row}",
                "text": text,
                "label": given,
                "source": "t.csv",
                "source_row": row + 2,
                "split": split,
            }
        )
    return pl.DataFrame(records), [label for _, label in rows], {f"d{row}" for row in flipped}
