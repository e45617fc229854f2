"""`refinery init --response-column`: a generation dataset (prompts and responses) declared from a sample."""

from __future__ import annotations

import polars as pl

from assets.datasets.declaration import DatasetDeclaration, Task
from assets.datasets.profile import _column, _text_column, pii_found
from assets.readers.mapping import RecordMapping
from assets.text.quality import identify_languages


def length_quantiles(texts: pl.Series) -> dict[str, int]:
    """Character lengths at the 0th, 50th, 95th and 100th percentiles."""
    lengths = texts.str.len_chars()
    return {f"p{q}": int(lengths.quantile(q / 100, "nearest") or 0) for q in (0, 50, 95, 100)}


def generation_profile(frame: pl.DataFrame, response: str, prompt: str | None = None) -> dict[str, object]:
    """Which column holds the prompts (given, or detected among the others), the lengths of both sides, the prompts'
    languages and the PII found on each side."""
    if response not in frame.columns:
        raise ValueError(f"no column {response!r} (columns: {', '.join(frame.columns)})")
    others = frame.drop(response)
    prompt = prompt or _text_column(others, [_column(others, name) for name in others.columns])[0]
    if prompt not in frame.columns:
        raise ValueError(f"no column {prompt!r} (columns: {', '.join(frame.columns)})")
    sides = {
        name: frame[column].cast(pl.String).drop_nulls()
        for name, column in (("prompt", prompt), ("response", response))
    }
    languages = identify_languages(sides["prompt"].head(2000))["language"].value_counts(sort=True).head(5)
    return {
        "rows": frame.height,
        "prompt_column": prompt,
        "response_column": response,
        "empty_responses": frame.height - sides["response"].len(),
        "lengths": {name: length_quantiles(texts) for name, texts in sides.items()},
        "languages": dict(languages.iter_rows()),
        "pii": {name: pii_found(texts) for name, texts in sides.items()},
    }


def generation_declaration(name: str, profile: dict, base_model: str | None) -> DatasetDeclaration:
    """A generation dataset for the profiled data, its length rules fitted to it, fine-tuning `base_model`."""
    lengths = profile["lengths"]
    rules = {
        "clean_documents": {
            "columns": {
                side: {
                    "checks": [
                        {
                            "name": f"{'prompt' if side == 'text' else side}_length",
                            "description": f"the cleaned {side if side != 'text' else 'prompt'} is between "
                            f"{low} and {high} characters",
                            "str_length": {"min": low, "max": high},
                        }
                    ]
                }
                for side, low, high in (
                    ("text", 1, max(200, lengths["prompt"]["p100"] * 2)),
                    ("response", 1, max(200, lengths["response"]["p100"] * 2)),
                )
            },
            "quality": {
                "languages": [
                    lang
                    for lang, count in profile["languages"].items()
                    if count >= 0.05 * sum(profile["languages"].values())
                ]
                or ["en"]
            },
        }
    }
    return DatasetDeclaration(
        name,
        description=f"declared by refinery init from {profile['rows']} profiled prompts and responses",
        mapping=RecordMapping(
            text_column=profile["prompt_column"], label_column=None, response_column=profile["response_column"]
        ),
        tasks=(Task("response", "response", None, "accept", "generation"),),
        rules=rules,
        training={"model_name_or_path": base_model} if base_model else {},
    )
