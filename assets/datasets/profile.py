"""Profiling a user's file before it is declared: columns, the likely text and label columns, and fitted rules."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl

from assets.datasets.declaration import DatasetDeclaration, Task
from assets.readers.drop import data_files
from assets.readers.formats import read_file
from assets.readers.mapping import RecordMapping
from assets.text.quality import identify_languages
from recipe.pii import mask_pii, placeholder_counts

PROFILE_ROWS = 200_000  # enough to see every common label and the length distribution
LABEL_NAME_HINTS = ("label", "category", "intent", "class", "target", "topic", "queue", "tag", "sentiment", "team")
MAX_LABELS = 500


@dataclass
class ColumnProfile:
    """One column: its type, how full and how varied it is, and how long its values are."""

    name: str
    dtype: str
    non_null: int
    distinct: int
    mean_length: float


@dataclass
class DatasetProfile:
    """What `refinery init` learned about a file, and why it chose its text and label columns."""

    rows: int
    columns: list[ColumnProfile]
    text_column: str
    text_reason: str
    label_columns: list[str]
    label_reasons: dict[str, str]
    label_counts: dict[str, dict[str, int]]
    text_length_quantiles: dict[str, int]
    languages: dict[str, int]
    duplicate_rate: float
    pii_counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def read_sample(location: Path, rows: int = PROFILE_ROWS) -> pl.DataFrame:
    """Up to `rows` records of a file or folder, columns as the files name them."""
    frames, taken = [], 0
    for path in data_files(location):
        for parsed in read_file(path, path.name, RecordMapping(), batch_size=min(rows, 50_000)):
            values = parsed.values()
            if values.width and parsed.size:
                frames.append(values)
                taken += parsed.size
            if taken >= rows:
                break
    if not frames:
        raise ValueError(f"{location}: no readable records to profile")
    return pl.concat(frames, how="diagonal_relaxed").head(rows)


def profile_frame(
    frame: pl.DataFrame, text_column: str | None = None, label_column: str | None = None
) -> DatasetProfile:
    """Profile a sample; the text and label columns are detected unless given."""
    columns = [_column(frame, name) for name in frame.columns]
    text, text_reason = (text_column, "given") if text_column else _text_column(frame, columns)
    if text not in frame.columns:
        raise ValueError(f"no column {text!r} (columns: {', '.join(frame.columns)})")
    label_reasons = {label_column: "given"} if label_column else _label_columns(frame, columns, text)
    if not label_reasons:
        raise ValueError("no column looks like a label (2 to 500 distinct values, mostly filled); give --label-column")
    missing = [name for name in label_reasons if name not in frame.columns]
    if missing:
        raise ValueError(f"no column {missing[0]!r} (columns: {', '.join(frame.columns)})")
    texts = frame[text].cast(pl.String).drop_nulls()
    lengths = texts.str.len_chars()
    quantiles = {f"p{q}": int(lengths.quantile(q / 100, "nearest") or 0) for q in (0, 1, 50, 95, 99, 100)}
    words = texts.str.split(" ").list.len()
    quantiles["words_p0"], quantiles["words_p1"] = int(words.min() or 0), int(words.quantile(0.01, "nearest") or 0)
    languages = identify_languages(texts.head(2000))["language"].value_counts(sort=True).head(5)
    labels = {
        name: dict(frame[name].cast(pl.String).drop_nulls().value_counts(sort=True).iter_rows())
        for name in label_reasons
    }
    return DatasetProfile(
        frame.height,
        columns,
        text,
        text_reason,
        list(label_reasons),
        label_reasons,
        labels,
        quantiles,
        dict(languages.iter_rows()),
        1 - texts.n_unique() / texts.len() if texts.len() else 0.0,
        pii_found(texts),
    )


def _column(frame: pl.DataFrame, name: str) -> ColumnProfile:
    series = frame[name]
    strings = series.cast(pl.String, strict=False)
    mean = strings.str.len_chars().mean() if series.dtype == pl.String else 0.0
    return ColumnProfile(
        name, str(series.dtype), series.len() - series.null_count(), series.n_unique(), round(float(mean or 0.0), 1)
    )


def _text_column(frame: pl.DataFrame, columns: list[ColumnProfile]) -> tuple[str, str]:
    candidates = [c for c in columns if c.dtype == "String" and c.non_null and c.distinct / max(c.non_null, 1) > 0.5]
    if not candidates:
        raise ValueError("no column looks like free text (strings, mostly distinct); give --text-column")
    best = max(candidates, key=lambda c: c.mean_length)
    share = best.distinct / max(best.non_null, 1)
    return best.name, f"longest strings (mean {best.mean_length:g} characters), {share:.0%} distinct"


def _label_columns(frame: pl.DataFrame, columns: list[ColumnProfile], text: str) -> dict[str, str]:
    """Columns that look like labels, the best first: a telling name, then more classes."""
    reasons = {}
    for column in columns:
        filled = column.non_null / max(frame.height, 1)
        distinct = column.distinct - (1 if column.non_null < frame.height else 0)
        too_many = distinct > min(MAX_LABELS, max(2, frame.height // 5))
        if column.name == text or distinct < 2 or too_many or filled < 0.9 or column.mean_length > 60:
            continue
        hint = next((h for h in LABEL_NAME_HINTS if h in column.name.lower()), None)
        named = f"its name holds {hint!r}, " if hint else ""
        reasons[column.name] = (bool(hint), distinct, f"{named}{distinct} distinct values, {filled:.0%} filled")
    ranked = sorted(reasons.items(), key=lambda item: (item[1][0], item[1][1]), reverse=True)
    return {name: reason for name, (_, _, reason) in ranked}


def pii_found(texts: pl.Series) -> dict[str, int]:
    """How many of each kind of personal data masking finds in (the first 20,000 of) the texts."""
    return {k: v for k, v in placeholder_counts(mask_pii(texts.head(20_000))).items() if v}


def fitted_declaration(name: str, profile: DatasetProfile) -> DatasetDeclaration:
    """A declaration for the profiled data: its columns, its label set, and rules fitted to its lengths."""
    label = profile.label_columns[0]
    q = profile.text_length_quantiles
    shortest, longest = max(1, min(3, q["p0"])), max(200, q["p100"] * 2)
    clean_rules = {
        "columns": {
            "text": {
                "checks": [
                    {
                        "name": "text_length",
                        "description": f"cleaned text is between {shortest} and {longest} characters",
                        "str_length": {"min": shortest, "max": longest},
                    }
                ]
            }
        },
        "quality": {
            "min_words": max(1, min(3, q["words_p0"])),
            "max_words": max(400, q["p100"] // 2),
            "languages": [
                lang for lang, count in profile.languages.items() if count >= 0.05 * sum(profile.languages.values())
            ]
            or ["en"],
        },
    }
    split_rules = {
        "dataset": [
            {
                "name": "text_length_distribution",
                "description": f"the median text is near this dataset's {q['p50']} characters",
                "text_length": {
                    "min_median": max(1, q["p50"] // 3),
                    "max_median": q["p50"] * 3 + 10,
                    "max_p95": max(q["p95"] * 3, 200),
                },
            }
        ]
    }
    task = Task(label, "label", tuple(sorted(profile.label_counts[label])), "quarantine")
    return DatasetDeclaration(
        name,
        description=f"declared by refinery init from {profile.rows} profiled records",
        mapping=RecordMapping(text_column=profile.text_column, label_column=label),
        tasks=(task,),
        rules={"clean_documents": clean_rules, "training_examples": split_rules},
    )
