"""The demo's generation dataset: answered tickets with planted reply defects, declared as a generation dataset."""

from __future__ import annotations

import json
from pathlib import Path

from assets.datasets.declaration import load_dataset
from assets.datasets.resolve import rule_book_for
from assets.demo.answers import generate_answers, write_answers_declaration, write_answers_drop


def test_the_answered_tickets_are_deterministic_and_plant_every_reply_defect(tmp_path: Path) -> None:
    records, defects = generate_answers(600, seed=11)
    assert generate_answers(600, seed=11)[0] == records
    assert min(defects.__dict__.values()) > 0
    assert sum(r["reply"] == "" for r in records) == defects.empty_reply
    assert sum("@example.com" in r["reply"] for r in records) == defects.reply_with_email
    write_answers_drop(tmp_path / "drop", 50)
    lines = (tmp_path / "drop" / "answered.ndjson").read_text().splitlines()
    assert len(lines) >= 50 and set(json.loads(lines[0])) == {"ticket_id", "question", "reply"}


def test_the_demo_declaration_is_a_generation_dataset_with_generation_rules(tmp_path: Path) -> None:
    declaration = load_dataset(write_answers_declaration(tmp_path, tmp_path / "base"))
    assert declaration.generative and declaration.mapping.response_column == "reply"
    assert declaration.mapping.label_column is None
    book = rule_book_for(declaration)
    assert "response_not_truncated" in {rule.name for rule in book.for_asset("clean_documents").row_rules.values()}
    assert declaration.training["model_name_or_path"] == str(tmp_path / "base")
