"""Add labels to a prototype-head model from a few examples each: `python -m trainers.add_labels --model DIR
--examples FILE --output DIR`. No gradient step: seconds, where a retrain takes minutes.

The examples file holds one JSON object per line with `text` and `label`. The new model version keeps the
source's weights, recipe and card, with the grown label map and a `few_shot` record in its lineage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from recipe.text_recipe import TextRecipe
from trainers.console import quiet_libraries
from trainers.export import export_model
from trainers.few_shot import add_prototype_labels, calibrate_new_rows
from trainers.registry import RECIPE_FILE, read_card, read_label_map


def read_examples(path: Path) -> dict[str, list[str]]:
    """Texts per label from a JSON-lines file; a bad line is an error naming the file and line."""
    examples: dict[str, list[str]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            text, label = record["text"], record["label"]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f"{path}:{number}: expected a JSON object with text and label ({error})") from error
        if not isinstance(text, str) or not isinstance(label, str) or not text.strip() or not label.strip():
            raise ValueError(f"{path}:{number}: text and label must be non-empty strings")
        examples.setdefault(label, []).append(text)
    if not examples:
        raise ValueError(f"{path}: no examples")
    return examples


def add_labels(
    source: Path, examples: dict[str, list[str]], output: Path, known: tuple[list[str], list[str]] | None = None
) -> dict[str, object]:
    """Export `source` grown by one prototype row per new label to `output`; what was added and how long it took.

    With `known` (texts and labels the model already has, e.g. its bundle's val split), the new rows' biases are
    lowered until accuracy on those texts is within half a point of what it was without them."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    card = read_card(source)
    prototypes = card.get("prototype_head")
    if not prototypes:
        raise ValueError(f"{source}: not trained with a prototype head; train with prototype_head: true first")
    started = time.perf_counter()
    recipe_path = source / RECIPE_FILE
    recipe = json.loads(recipe_path.read_text()) if recipe_path.is_file() else None
    if recipe is not None:  # the texts the prototypes see are prepared as the model's training texts were
        prepared = TextRecipe.from_dict(recipe).prepare([t for texts in examples.values() for t in texts])
        refused = [p.refused for p in prepared if p.refused]
        if refused:
            raise ValueError(f"the model's recipe refuses {len(refused)} example(s): {refused[0]}")
        flat = iter(p.text for p in prepared)
        examples = {label: [next(flat) for _ in texts] for label, texts in examples.items()}
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForSequenceClassification.from_pretrained(source).eval()
    label_map = read_label_map(source)
    max_length = int(card.get("hyperparameters", {}).get("max_length", 128))
    grown = add_prototype_labels(model, tokenizer, examples, label_map, prototypes["temperature"], max_length)
    offset = 0.0
    if known is not None:
        pairs = [(text, label_map[label]) for text, label in zip(*known, strict=True) if label in label_map]
        offset = calibrate_new_rows(
            model, tokenizer, ([t for t, _ in pairs], [i for _, i in pairs]), len(examples), max_length
        )
    seconds = round(time.perf_counter() - started, 3)
    added = {label: len(texts) for label, texts in examples.items()}
    few_shot = {"from": source.name, "labels": added, "seconds": seconds, "bias_offset": offset}
    lineage = {
        **card.get("lineage", {}),
        "few_shot": few_shot,
        "evaluation_bundle": card.get("lineage", {}).get("evaluation_bundle") or source.name,
    }
    new_card = {
        **card,
        "label_map": grown,
        "lineage": lineage,
        "prototype_head": {**prototypes, "examples": {**prototypes.get("examples", {}), **added}},
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    export_model(model, tokenizer, grown, new_card, output, recipe)
    return {"model_path": str(output), "added": added, "labels": len(grown), "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    quiet_libraries()
    parser = argparse.ArgumentParser(prog="python -m trainers.add_labels", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a model folder with a prototype head")
    parser.add_argument("--examples", type=Path, required=True, help="JSON lines with text and label")
    parser.add_argument("--output", type=Path, required=True, help="the new model folder")
    args = parser.parse_args(argv)
    try:
        print(json.dumps(add_labels(args.model, read_examples(args.examples), args.output)))
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
