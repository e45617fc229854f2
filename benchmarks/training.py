"""`python -m benchmarks.training [--workload NAME]`: training throughput of Refinery's trainer against the
Hugging Face `Trainer`, padded to the model's max length (its default set-up) and with dynamic padding.

The same model, data, batch size, optimizer settings and thread count go through all three, in one run.
Throughput is samples per second from the end of the first optimizer step to the end of the last, so
model loading, tokenization and the first step's one-off costs count for none of them. Padding to the
max length costs the same for every sample, so that way runs fewer steps (`max_length_steps`).

Workloads:
- `minilm-clinc150`: the embedded MiniLM-L6 on CLINC150 training texts (../shared/data when present,
  else generated texts with CLINC150's length mix of 2–28 words).
- `bert-small-mix`: a BERT config of 4 layers and 256 hidden built in code, on texts of 64–512 tokens.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from benchmarks.common import result_line
from trainers.bundle import BundleManifest, write_bundle

CLINC150 = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "clinc150_data_full.json"
LEARNING_RATE = 5e-5
SEED = 13


@dataclass
class Workload:
    """A model folder, its training texts and labels, and how to run it."""

    name: str
    model: Path
    texts: list[str]
    labels: list[str]
    batch_size: int
    max_length_steps: int  # steps of the padded-to-max-length way


class StepClock:
    """Times optimizer steps: seconds and samples from the end of step 1 to the end of the last step."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size, self.first_end, self.last_end, self.steps = batch_size, 0.0, 0.0, 0

    def step_ended(self) -> None:
        now = time.perf_counter()
        self.steps += 1
        if self.steps == 1:
            self.first_end = now
        self.last_end = now

    def samples_per_s(self) -> float:
        if self.steps < 2:
            raise RuntimeError("at least two steps are needed to measure throughput")
        return (self.steps - 1) * self.batch_size / (self.last_end - self.first_end)


def run_refinery(workload: Workload, scratch: Path) -> float:
    """Samples per second of `trainers.train.fit` over one epoch of the workload."""
    import lightning as L

    from trainers.fitting import fit
    from trainers.params import TrainingParams
    from trainers.train import Reporter

    labels = sorted(set(workload.labels))
    rows = list(zip(workload.texts, workload.labels, strict=True))
    held_out = rows[: workload.batch_size]  # val and test only have to exist; they are not timed
    tables = {
        split: pa.table(
            {
                "doc_id": [f"{split}{i}" for i in range(len(part))],
                "text": [t for t, _ in part],
                "label": [label for _, label in part],
            }
        )
        for split, part in (("train", rows), ("val", held_out), ("test", held_out))
    }
    manifest = BundleManifest(
        {label: i for i, label in enumerate(labels)},
        ["benchmark"],
        "none",
        {split: table.num_rows for split, table in tables.items()},
    )
    bundle = write_bundle(scratch / "bundle", tables, manifest)
    clock = StepClock(workload.batch_size)

    class Clock(L.Callback):
        def on_train_batch_end(self, *args: object) -> None:
            clock.step_ended()

    params = TrainingParams(
        model_name_or_path=str(workload.model),
        max_epochs=1,
        batch_size=workload.batch_size,
        learning_rate=LEARNING_RATE,
        max_length=512,
        seed=SEED,
    )
    with Reporter() as reporter:
        fit(bundle, params, reporter, callbacks=[Clock()])
    return clock.samples_per_s()


def run_hugging_face(workload: Workload, scratch: Path, pad_to_max_length: bool) -> float:
    """Samples per second of `transformers.Trainer` set up the way its documentation shows."""
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        default_data_collator,
    )

    labels = sorted(set(workload.labels))
    tokenizer = AutoTokenizer.from_pretrained(workload.model)
    padding = "max_length" if pad_to_max_length else False
    encoded = tokenizer(workload.texts, truncation=True, padding=padding, max_length=tokenizer.model_max_length)
    label_ids = {label: i for i, label in enumerate(labels)}
    dataset = [
        {**{key: values[i] for key, values in encoded.items()}, "labels": label_ids[workload.labels[i]]}
        for i in range(len(workload.texts))
    ]
    model = AutoModelForSequenceClassification.from_pretrained(
        workload.model, num_labels=len(labels), ignore_mismatched_sizes=True
    )
    clock = StepClock(workload.batch_size)

    class Clock(TrainerCallback):
        def on_step_end(self, *args: object, **kwargs: object) -> None:
            clock.step_ended()

    steps = len(dataset) // workload.batch_size
    arguments = TrainingArguments(
        output_dir=str(scratch / "hf"),
        per_device_train_batch_size=workload.batch_size,
        max_steps=min(steps, workload.max_length_steps) if pad_to_max_length else steps,
        learning_rate=LEARNING_RATE,
        weight_decay=0.01,
        warmup_steps=0.1,
        seed=SEED,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
    )
    collator = default_data_collator if pad_to_max_length else DataCollatorWithPadding(tokenizer)
    trainer = Trainer(model=model, args=arguments, train_dataset=dataset, data_collator=collator, callbacks=[Clock()])
    trainer.train()
    return clock.samples_per_s()


def clinc150_texts(count: int, rng: random.Random) -> tuple[list[str], list[str]]:
    """CLINC150 training texts and intents, or generated ones of the same length mix when it is absent."""
    if CLINC150.is_file():
        rows = json.loads(CLINC150.read_text())["train"]
        rng.shuffle(rows)
        return [text for text, _ in rows[:count]], [label for _, label in rows[:count]]
    words = [
        "please",
        "what",
        "is",
        "my",
        "account",
        "balance",
        "book",
        "a",
        "table",
        "for",
        "two",
        "tomorrow",
        "how",
        "do",
        "i",
        "reset",
        "the",
        "pin",
    ]
    texts = [" ".join(rng.choices(words, k=rng.randint(2, 28))) for _ in range(count)]
    return texts, [f"intent_{rng.randrange(150)}" for _ in range(count)]


def minilm_clinc150(scratch: Path, rng: random.Random) -> Workload:
    """The embedded MiniLM-L6 on 2,048 CLINC150-length texts in batches of 32."""
    from trainers.default_model import default_model_folder

    texts, labels = clinc150_texts(2048, rng)
    return Workload("minilm-clinc150", default_model_folder(), texts, labels, batch_size=32, max_length_steps=4)


def bert_small_mix(scratch: Path, rng: random.Random) -> Workload:
    """A 4-layer, 256-hidden BERT built in code, on 512 texts of 64–512 tokens in batches of 16."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig

    from trainers.default_model import default_model_folder

    tokenizer = AutoTokenizer.from_pretrained(default_model_folder())
    torch.manual_seed(SEED)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
        max_position_embeddings=512,
        num_labels=8,
    )
    folder = scratch / "bert-small"
    AutoModelForSequenceClassification.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    # Whole-word vocabulary entries are one token each, so n words make n + 2 tokens with [CLS] and [SEP].
    words = [w for w in tokenizer.get_vocab() if w.isalpha() and w.isascii() and len(w) > 2]
    texts = [" ".join(rng.choices(words, k=rng.randint(62, 510))) for _ in range(512)]
    labels = [f"class_{rng.randrange(8)}" for _ in texts]
    return Workload("bert-small-mix", folder, texts, labels, batch_size=16, max_length_steps=8)


WORKLOADS = {"minilm-clinc150": minilm_clinc150, "bert-small-mix": bert_small_mix}


def main() -> None:
    import torch
    from transformers.utils import logging as transformers_logging

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=sorted(WORKLOADS), action="append", help="default: all")
    args = parser.parse_args()
    transformers_logging.set_verbosity_error()
    for name in args.workload or list(WORKLOADS):
        with tempfile.TemporaryDirectory() as scratch:
            workload = WORKLOADS[name](Path(scratch), random.Random(SEED))
            print(
                f"{name}: {len(workload.texts)} texts, batch {workload.batch_size}, {torch.get_num_threads()} threads",
                flush=True,
            )
            ours = run_refinery(workload, Path(scratch))
            print(f"  refinery            {ours:8.2f} samples/s", flush=True)
            dynamic = run_hugging_face(workload, Path(scratch), pad_to_max_length=False)
            print(f"  hf dynamic padding  {dynamic:8.2f} samples/s", flush=True)
            padded = run_hugging_face(workload, Path(scratch), pad_to_max_length=True)
            print(f"  hf max-length pad   {padded:8.2f} samples/s", flush=True)
            print(
                result_line(
                    workload=name,
                    samples_per_s=ours,
                    hf_samples_per_s=padded,
                    hf_dynamic_samples_per_s=dynamic,
                    speedup=ours / padded,
                    speedup_vs_dynamic=ours / dynamic,
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
