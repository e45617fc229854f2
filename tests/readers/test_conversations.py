"""Chat records of a generation dataset: each conversation becomes a prompt, a response and the turns before them;
a conversation of another shape is quarantined whole, naming what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from assets.readers.drop import DropReader
from assets.readers.mapping import MappingError, RecordMapping
from assets.storage.records import CONTEXT, RESPONSE
from assets.text.cleaning import clean_version, recipe_for
from recipe.normalize import CleaningOptions

CHAT = RecordMapping(label_column=None, messages_column="messages", id_column="id")


def chat(*turns: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": role, "content": content} for role, content in turns]


def read(folder: Path) -> tuple[pl.DataFrame, DropReader]:
    reader = DropReader(folder, CHAT)
    frame = pl.concat([pl.from_arrow(batch) for batch in reader.batches()])
    return frame, reader


def test_a_conversation_becomes_prompt_response_and_earlier_turns(tmp_path: Path) -> None:
    records = [
        {"id": "a", "messages": chat(("user", "where is my parcel?"), ("assistant", "it left the depot today."))},
        {
            "id": "b",
            "messages": chat(
                ("system", "be brief"),
                ("user", "hi"),
                ("assistant", "hello, how can i help?"),
                ("user", "reset my vpn"),
                ("assistant", "open settings, then reset it."),
            ),
        },
        {"id": "c", "messages": json.dumps(chat(("user", "as text?"), ("assistant", "json text works too.")))},
    ]
    (tmp_path / "chats.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    frame, reader = read(tmp_path)
    assert reader.rejects == [] and frame["source_id"].to_list() == ["a", "b", "c"]
    assert frame["text"].to_list() == ["where is my parcel?", "reset my vpn", "as text?"]
    assert frame["response"].to_list()[1] == "open settings, then reset it."
    assert frame["context"][0] is None
    assert json.loads(frame["context"][1]) == chat(
        ("system", "be brief"), ("user", "hi"), ("assistant", "hello, how can i help?")
    )
    assert "messages" not in frame.columns  # split, not carried a second time
    assert frame["doc_id"].n_unique() == 3


def test_conversations_of_another_shape_are_quarantined_whole_naming_the_problem(tmp_path: Path) -> None:
    bad = [
        {"id": "x", "messages": chat(("user", "no answer yet"))},
        {"id": "y", "messages": chat(("assistant", "hi"), ("assistant", "hello"))},
        {"id": "z", "messages": [{"role": "robot", "content": "beep"}, {"role": "assistant", "content": "boop"}]},
        {"id": "w", "messages": "{not json"},
        {"id": "ok", "messages": chat(("user", "fine?"), ("assistant", "fine."))},
    ]
    (tmp_path / "chats.jsonl").write_text("\n".join(json.dumps(r) for r in bad) + "\n")
    frame, reader = read(tmp_path)
    assert frame["source_id"].to_list() == ["ok"] and reader.records_read == 5
    assert [r["rule"] for r in reader.rejects] == ["conversation_shape"] * 4
    assert [r["source_row"] for r in reader.rejects] == [1, 2, 3, 4]
    assert "ends with a user message and the assistant's answer" in reader.rejects[1]["reason"]
    assert "messages[0].role" in reader.rejects[2]["reason"] and "not JSON" in reader.rejects[3]["reason"]
    assert json.loads(reader.rejects[0]["record"])["messages"][0]["content"] == "no answer yet"  # nothing lost


def test_cleaning_masks_personal_data_in_every_turn_and_finds_duplicates_on_the_whole_conversation(
    tmp_path: Path,
) -> None:
    leak = chat(
        ("user", "my mail is jo@example.com"),
        ("assistant", "noted, jo@example.com it is."),
        ("user", "thanks, now reset my vpn please"),
        ("assistant", "open settings and reset the vpn."),
    )
    other = [*chat(("user", "my mail is al@example.org"), ("assistant", "noted.")), *leak[2:]]
    records = [{"id": "1", "messages": leak}, {"id": "2", "messages": leak}, {"id": "3", "messages": other}]
    (tmp_path / "chats.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    frame, _ = read(tmp_path)
    cleaned = clean_version(frame, None, recipe_for(None, CleaningOptions()), answer_columns=(RESPONSE, CONTEXT))
    assert cleaned.kept["source_id"].to_list() == ["1", "3"]  # same last turn, different earlier turns: both kept
    assert cleaned.duplicates == 1
    context = json.loads(cleaned.kept["context"][0])
    assert [m["content"] for m in context] == ["my mail is <EMAIL>", "noted, <EMAIL> it is."]
    copy = json.loads(cleaned.rejected["record"][0])
    assert "jo@example.com" in copy["original_context"]  # the quarantined copy keeps what arrived


def test_a_mapping_with_both_a_conversation_and_a_response_column_is_refused() -> None:
    try:
        RecordMapping.from_mapping({"messages_column": "m", "response_column": "r"}, "datasets/x.yaml: source")
    except MappingError as error:
        assert "drop 'response_column'" in str(error) and "datasets/x.yaml" in str(error)
    else:
        raise AssertionError("accepted")
