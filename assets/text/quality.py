"""Quality and language filters: Gopher-style heuristics as Polars expressions, thresholds from the rules."""

from __future__ import annotations

import polars as pl

from assets.storage.records import empty_quarantine, quarantine_documents
from assets.text.language import identify


def quality_measures(text: pl.Expr, original: pl.Expr) -> list[pl.Expr]:
    """Per-document measures the thresholds compare against (text is cleaned: single spaces)."""
    word_count = text.str.count_matches(" ") + 1
    lines = (
        original.str.split("\n")
        .list.eval(pl.element().str.strip_chars())
        .list.eval(pl.element().filter(pl.element() != ""))
    )
    line_count = lines.list.len()
    return [
        word_count.alias("words"),
        ((text.str.len_chars() - word_count + 1) / word_count).alias("mean_word_length"),
        (text.str.count_matches(r"#|\.\.\.|…") / word_count).alias("symbol_ratio"),
        (text.str.count_matches(r"[^ ]*\p{L}[^ ]*") / word_count).alias("alpha_word_fraction"),
        pl.when(original.str.contains("\n"))
        .then(1 - lines.list.unique().list.len() / line_count.clip(lower_bound=1))
        .otherwise(0.0)
        .alias("duplicate_line_fraction"),
        pl.when(word_count >= 10)
        .then(1 - text.str.to_lowercase().str.split(" ").list.n_unique() / word_count)
        .otherwise(0.0)
        .alias("repeated_word_fraction"),
    ]


# (threshold key, the measure it bounds, True when the document fails)
CHECKS = (
    ("min_words", "words", lambda m, t: m < t),
    ("max_words", "words", lambda m, t: m > t),
    ("min_mean_word_length", "mean_word_length", lambda m, t: m < t),
    ("max_mean_word_length", "mean_word_length", lambda m, t: m > t),
    ("max_symbol_ratio", "symbol_ratio", lambda m, t: m > t),
    ("min_alpha_word_fraction", "alpha_word_fraction", lambda m, t: m < t),
    ("max_duplicate_line_fraction", "duplicate_line_fraction", lambda m, t: m > t),
    ("max_repeated_word_fraction", "repeated_word_fraction", lambda m, t: m > t),
)


def identify_languages(texts: pl.Series) -> pl.DataFrame:
    """Language and confidence of each distinct text (py3langid's shipped model, vectorised: no download)."""
    unique = texts.drop_nulls().unique()
    languages, confidences = identify(unique.to_list())
    return pl.DataFrame(
        {
            "text": unique,
            "language": pl.Series(languages, dtype=pl.String),
            "language_confidence": pl.Series(confidences, dtype=pl.Float64),
        }
    )


def apply_quality_filters(
    documents: pl.DataFrame, thresholds: dict[str, object], stage: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Quarantine documents that break a quality threshold or are confidently in another language.

    A document is quarantined once, under the first rule it breaks, with the measured value.
    """
    if not thresholds or documents.is_empty():
        return documents, empty_quarantine()
    original = pl.col("original_text") if "original_text" in documents.columns else pl.col("text")
    wanted = {measure for key, measure, _ in CHECKS if key in thresholds}
    measures = [m for m in quality_measures(pl.col("text"), original.fill_null("")) if m.meta.output_name() in wanted]
    measured = documents.with_row_index("__row").with_columns(measures)
    failures = []
    for key, measure, fails in CHECKS:
        if key in thresholds:
            failures.append((f"quality_{key}", measure, fails(pl.col(measure), thresholds[key])))
    languages = thresholds.get("languages")
    if languages:
        found = identify_languages(measured["text"])
        measured = measured.join(found, on="text", how="left", maintain_order="left")
        confident = pl.col("language_confidence") >= float(thresholds.get("min_language_confidence", 0.9))
        failures.append(("quality_language", "language", confident & ~pl.col("language").is_in(languages)))
    rule = pl.lit(None, pl.String)
    value = pl.lit(None, pl.String)
    for name, measure, failed in reversed(failures):
        rule = pl.when(failed).then(pl.lit(name)).otherwise(rule)
        value = pl.when(failed).then(pl.col(measure).cast(pl.String)).otherwise(value)
    measured = measured.with_columns(rule.alias("__rule"), value.alias("__value"))
    rejected = measured.filter(pl.col("__rule").is_not_null())
    quarantine = pl.concat(
        [
            quarantine_documents(
                group, stage, name, f"breaks the {name.removeprefix('quality_')} threshold", value=pl.col("__value")
            )
            for (name,), group in rejected.group_by("__rule", maintain_order=True)
        ]
        or [empty_quarantine()]
    )
    kept = measured.filter(pl.col("__rule").is_null()).select(documents.columns)
    return kept, quarantine
