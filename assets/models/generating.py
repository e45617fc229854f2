"""Batch generation: the production causal LM's answer to every prompt of a version or a file."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from contracts.model_folder import GENERATOR
from trainers.kinds import kind_of


class NotGenerativeError(ValueError):
    """The production model answers no prompts (a classifier)."""


def check_generative(model_folder: Path) -> None:
    """Raise unless the model is a causal LM."""
    kind = kind_of(model_folder)
    if kind.family != GENERATOR:
        raise NotGenerativeError(
            f"model {model_folder.name} is a {kind.name} model, not a generator: it labels texts "
            "(batch_predictions) and answers no prompts"
        )


def generate_answers(
    model_folder: Path, rows: pl.DataFrame, batch_size: int, max_new_tokens: int, temperature: float = 0.0
) -> pl.DataFrame:
    """`rows` (doc_id, text) with the prompt as the model saw it (its recipe applied: never the unmasked input), the
    answer and its token count, or why the prompt was refused (empty, too long for the model or its recipe)."""
    from trainers.generative.generation import Generator, Limits  # torch loads in the step

    check_generative(model_folder)
    generator = Generator(model_folder)
    rows = rows.filter(pl.col("text").str.strip_chars() != "")
    prompts = [generator.prepared([{"role": "user", "content": text}]) for text in rows["text"].to_list()]
    refused = [refusal(generator, prompt, max_new_tokens) for prompt in prompts]
    wanted = [index for index, reason in enumerate(refused) if reason is None]
    answers: dict[int, tuple[str, int]] = {}
    limits = Limits(max_new_tokens=max_new_tokens, temperature=temperature)
    for start in range(0, len(wanted), batch_size):
        batch = wanted[start : start + batch_size]
        answers.update(zip(batch, generator.answer([prompts[i] for i in batch], limits), strict=True))
    return rows.with_columns(
        pl.Series("text", [prompt[0]["content"] for prompt in prompts], dtype=pl.String),
        pl.Series("answer", [answers[i][0] if i in answers else None for i in range(len(prompts))], dtype=pl.String),
        pl.Series("tokens", [answers[i][1] if i in answers else None for i in range(len(prompts))], dtype=pl.Int64),
        pl.Series("refused", refused, dtype=pl.String),
        pl.lit(model_folder.name).alias("model_version"),
    )


def refusal(generator, prompt: list[dict[str, str]], max_new_tokens: int) -> str | None:
    """Why a prompt gets no answer: nothing left after its recipe, or longer than the model's positions allow."""
    text = prompt[0]["content"]
    if generator.recipe is not None and generator.recipe.check(text).refused:
        return generator.recipe.check(text).refused
    if not text.strip():
        return "nothing is left of the prompt after cleaning"
    positions = generator.max_positions
    tokens = generator.prompt_tokens(prompt)
    if positions and tokens + max_new_tokens > positions:
        return f"the prompt has {tokens} tokens; with {max_new_tokens} new ones that passes the model's {positions}"
    return None
