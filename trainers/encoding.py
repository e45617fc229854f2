"""Token ids for texts with a truncation policy (head, tail, head+tail), shared by training and inference."""

from __future__ import annotations

TRUNCATIONS = ("head", "tail", "head+tail")


def encode(tokenizer, texts: list[str], max_length: int, truncation: str = "head") -> list[list[int]]:
    """Ids with the model's special tokens, at most `max_length`, keeping the head, the tail or both ends."""
    if truncation not in TRUNCATIONS:
        raise ValueError(f"truncation must be one of {', '.join(TRUNCATIONS)}, not {truncation!r}")
    if truncation == "head":
        return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    prefix, suffix = special_tokens(tokenizer)
    room = max_length - len(prefix) - len(suffix)
    encoded = []
    for ids in tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]:
        if len(ids) > room:
            ids = ids[-room:] if truncation == "tail" else ids[: room // 2] + ids[len(ids) - (room - room // 2) :]
        encoded.append(prefix + ids + suffix)
    return encoded


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids a model puts before and after one sequence ([CLS] ... [SEP], <s> ... </s>, ... <sep> <cls>)."""
    content = tokenizer("x", add_special_tokens=False)["input_ids"]
    full = tokenizer("x", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(content) + 1):
        if full[start : start + len(content)] == content:
            return full[:start], full[start + len(content) :]
    raise ValueError(f"cannot find where {type(tokenizer).__name__} puts its special tokens")
