"""`refinery init` on instruction, chat or preference data: a generation dataset (prompts and responses) or a
preference dataset (prompts with a chosen and a rejected answer) declared from a sample."""

from __future__ import annotations

from dataclasses import asdict

import polars as pl

from assets.datasets.chat_formats import ChatFormat
from assets.datasets.declaration import DatasetDeclaration, Task
from assets.datasets.profile import pii_found
from assets.readers.conversations import ConversationShapeError, joined_prompt, split_conversation
from assets.readers.mapping import RecordMapping
from assets.readers.preference_pairs import PairShapeError, split_pair
from assets.text.quality import identify_languages
from trainers.bundle import CHOSEN, DOCUMENTS, GENERATION, PAIRS, RESPONSE

SIDE_NAMES = {
    "prompt": "prompt",
    RESPONSE: "response",
    CHOSEN: "chosen answer",
    "rejected": "rejected answer",
    "document": "document",
}
SHORTEST = {"document": 20}  # a fitted length rule's minimum (characters) where 1 would let noise through
TASKS = {  # the task `refinery init` declares, by the sides its sample has
    RESPONSE: Task("response", RESPONSE, None, "accept", GENERATION),
    CHOSEN: Task("preference", CHOSEN, None, "accept", PAIRS),
    "document": Task("domain", "text", None, "accept", DOCUMENTS),
}


def length_quantiles(texts: pl.Series) -> dict[str, int]:
    """Character lengths at the 0th, 50th, 95th and 100th percentiles."""
    lengths = texts.str.len_chars()
    return {f"p{q}": int(lengths.quantile(q / 100, "nearest") or 0) for q in (0, 50, 95, 100)}


def conversation_sides(frame: pl.DataFrame, chat: ChatFormat) -> tuple[list[str], list[str], int]:
    """The sample's prompts and responses as the pipeline will read them, and how many records it would quarantine."""
    mapping = chat.mapping
    if mapping.messages_column:
        split, malformed = [], 0
        for value in frame[mapping.messages_column].to_list():
            try:
                split.append(split_conversation(value.to_list() if isinstance(value, pl.Series) else value))
            except ConversationShapeError:
                malformed += 1
        return [p for p, _, _ in split], [r for _, r, _ in split], malformed
    extra = frame[mapping.input_column] if mapping.input_column else pl.Series([None] * frame.height)
    instructions = frame[mapping.text_column].cast(pl.String).to_list()
    prompts = [joined_prompt(i, x) for i, x in zip(instructions, extra.cast(pl.String).to_list(), strict=True)]
    responses = frame[mapping.response_column].cast(pl.String).to_list()
    kept = [(p, r) for p, r in zip(prompts, responses, strict=True) if p is not None and r is not None]
    return [p for p, _ in kept], [r for _, r in kept], frame.height - len(kept)


def pair_sides(frame: pl.DataFrame, mapping: RecordMapping) -> tuple[dict[str, list[str]], int]:
    """The sample's prompts and both answers as the pipeline will read them, and how many records it would
    quarantine."""
    columns = (mapping.text_column, mapping.chosen_column, mapping.rejected_column)
    values = [frame[c].to_list() if c in frame.columns else [None] * frame.height for c in columns]
    sides: dict[str, list[str]] = {"prompt": [], CHOSEN: [], "rejected": []}
    malformed = 0
    for prompt, chosen, rejected in zip(*values, strict=True):
        try:
            parts = split_pair(prompt, chosen, rejected)
        except (PairShapeError, RecursionError):
            malformed += 1
            continue
        for side, part in zip(sides, parts, strict=False):
            sides[side].append(part)
    return sides, malformed


def record_sides(frame: pl.DataFrame, chat: ChatFormat) -> tuple[dict[str, list[str]], int]:
    """Each side of the sample's records (prompt and response, or prompt and both answers), and the malformed."""
    if chat.mapping.chosen_column:
        return pair_sides(frame, chat.mapping)
    if chat.name == "documents":
        documents = frame[chat.mapping.text_column].cast(pl.String)
        return {"document": documents.drop_nulls().to_list()}, documents.null_count()
    prompts, responses, malformed = conversation_sides(frame, chat)
    return {"prompt": prompts, RESPONSE: responses}, malformed


def generation_profile(frame: pl.DataFrame, chat: ChatFormat) -> dict[str, object]:
    """The format found, the lengths of prompts and answers, their languages (each example's prompt and
    first answer together: a short prompt alone is too little text to tell) and the PII found on each side."""
    texts, malformed = record_sides(frame, chat)
    if not next(iter(texts.values())):
        raise ValueError(f"{chat.reason}, but no record of the sample has the text it needs")
    sides = {side: pl.Series(values, dtype=pl.String) for side, values in texts.items()}
    first, *answers = sides  # the prompt and its first answer together, or a document alone
    together = (sides[first] + "\n" + sides[answers[0]] if answers else sides[first]).head(2000)
    languages = identify_languages(together)["language"].value_counts(sort=True).head(5)
    return {
        "rows": frame.height,
        "format": chat.name,
        "found": chat.reason,
        "mapping": {k: v for k, v in asdict(chat.mapping).items() if v != getattr(RecordMapping(), k)},
        "malformed": malformed,
        "lengths": {name: length_quantiles(texts) for name, texts in sides.items()},
        "languages": dict(languages.iter_rows()),
        "pii": {name: pii_found(texts) for name, texts in sides.items()},
    }


def length_rule(side: str, quantiles: dict[str, int]) -> dict[str, object]:
    """A length check fitted to a side's sample: up to twice its longest, at least 200 characters."""
    low, high = SHORTEST.get(side, 1), max(200, quantiles["p100"] * 2)
    check = {
        "name": f"{side}_length",
        "description": f"the cleaned {SIDE_NAMES[side]} is between {low} and {high} characters",
        "str_length": {"min": low, "max": high},
    }
    return {"checks": [check]}


def generation_declaration(
    name: str, profile: dict, mapping: RecordMapping, base_model: str | None
) -> DatasetDeclaration:
    """A generation, preference or pretraining dataset for the profiled data, its length rules fitted to it,
    tuning `base_model`."""
    lengths = profile["lengths"]
    task = next(TASKS[side] for side in lengths if side in TASKS)
    rules = {
        "clean_documents": {
            "columns": {
                "text" if side in ("prompt", "document") else side: length_rule(side, quantiles)
                for side, quantiles in lengths.items()
            },
            "quality": {
                "languages": [
                    lang
                    for lang, count in profile["languages"].items()
                    if count >= 0.1 * sum(profile["languages"].values())  # a tenth: one-off misreadings stay out
                ]
                or ["en"]
            },
        }
    }
    return DatasetDeclaration(
        name,
        description=f"declared by refinery init from {profile['rows']} profiled {profile['format']} records",
        mapping=mapping,
        tasks=(task,),
        rules=rules,
        training={"model_name_or_path": base_model} if base_model else {},
    )
