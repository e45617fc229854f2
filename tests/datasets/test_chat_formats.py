"""Instruction and chat files in the formats users have: detected by `refinery init`, read by the pipeline into the
same prompts and responses, each malformed record alone refused with its reason."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from assets.datasets.chat_formats import ChatFormatError, chosen_chat_format, detect_chat_format
from assets.datasets.generation_profile import generation_declaration, generation_profile
from assets.datasets.profile import read_sample
from assets.readers.drop import read_drop

QUESTIONS = [f"how do I reset the password of account {n}?" for n in range(30)]
ANSWERS = [f"Open settings, choose security, then reset password {n} and sign in again." for n in range(30)]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def openai_file(tmp_path: Path) -> Path:
    records = [
        {
            "messages": [
                {"role": "developer", "content": "Answer briefly."},
                {"role": "user", "content": [{"type": "text", "text": question}]},
                {"role": "assistant", "content": answer},
            ]
        }
        for question, answer in zip(QUESTIONS, ANSWERS, strict=True)
    ]
    return write_jsonl(tmp_path / "chat.jsonl", records)


def sharegpt_file(tmp_path: Path) -> Path:
    records = [
        {"conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]}
        for question, answer in zip(QUESTIONS, ANSWERS, strict=True)
    ]
    path = tmp_path / "sharegpt.json"
    path.write_text(json.dumps(records))
    return path


def alpaca_file(tmp_path: Path) -> Path:
    inputs = ["" if n % 2 else f"user id {n}" for n in range(30)]
    frame = pl.DataFrame({"instruction": QUESTIONS, "input": inputs, "output": ANSWERS})
    frame.write_csv(tmp_path / "alpaca.csv")
    return tmp_path / "alpaca.csv"


def prompt_response_file(tmp_path: Path) -> Path:
    pl.DataFrame({"prompt": QUESTIONS, "completion": ANSWERS}).write_parquet(tmp_path / "pairs.parquet")
    return tmp_path / "pairs.parquet"


@pytest.mark.parametrize(
    ("make", "name"),
    [(openai_file, "openai"), (sharegpt_file, "sharegpt"), (alpaca_file, "alpaca"), (prompt_response_file, None)],
)
def test_each_format_is_found_and_read_into_the_same_prompts_and_responses(tmp_path: Path, make, name) -> None:
    source = make(tmp_path)
    chat = detect_chat_format(read_sample(source))
    assert chat is not None and chat.name == (name or "prompt-response")
    documents = read_drop(
        source, generation_declaration("d", generation_profile(read_sample(source), chat), chat.mapping, None).mapping
    )
    assert documents.quarantine.height == 0 and documents.documents.height == 30
    assert documents.documents["response"].to_list() == ANSWERS
    prompts = documents.documents["text"].to_list()
    if name == "alpaca":  # the input follows its instruction after a blank line; an empty input adds nothing
        assert prompts[0] == f"{QUESTIONS[0]}\n\nuser id 0" and prompts[1] == QUESTIONS[1]
    else:
        assert prompts == QUESTIONS


def test_short_english_prompts_are_declared_english_only(tmp_path: Path) -> None:
    source = openai_file(tmp_path)
    chat = detect_chat_format(read_sample(source))
    profile = generation_profile(read_sample(source), chat)
    rules = generation_declaration("d", profile, chat.mapping, None).rules
    assert rules["clean_documents"]["quality"]["languages"] == ["en"]


def test_a_malformed_conversation_is_quarantined_alone_with_its_reason(tmp_path: Path) -> None:
    source = openai_file(tmp_path)
    lines = source.read_text().splitlines()
    lines[3] = json.dumps({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]})
    source.write_text("\n".join(lines) + "\n")
    chat = detect_chat_format(read_sample(source))
    assert generation_profile(read_sample(source), chat)["malformed"] == 1
    documents = read_drop(source, chat.mapping)
    assert documents.documents.height == 29 and documents.quarantine.height == 1
    assert "'image_url' part is not text" in documents.quarantine["reason"][0]


def test_a_requested_format_the_sample_does_not_hold_is_refused_naming_what_it_holds(tmp_path: Path) -> None:
    sample = read_sample(alpaca_file(tmp_path))
    with pytest.raises(ChatFormatError, match="--format sharegpt: the sample holds alpaca"):
        detect_chat_format(sample, "sharegpt")
    with pytest.raises(ChatFormatError, match="no column 'chat'"):
        detect_chat_format(sample, messages_column="chat")


def test_a_labelled_text_file_is_no_chat_format(tmp_path: Path) -> None:
    frame = pl.DataFrame({"text": QUESTIONS, "answer": ["billing", "access"] * 15})
    assert detect_chat_format(frame) is None  # a label column repeats: it is no response
    assert chosen_chat_format(frame, label_column="answer") is None
