"""`python -m benchmarks.dpo [PAIRS] [--model tiny|smollm2]`: Refinery's DPO against TRL's `DPOTrainer` on the same
model, pairs, LoRA adapters and batch, on the CPU.

Both sides start from the same model (a tiny Llama built in code, or the shipped SmolLM2-135M-Instruct), train one
epoch over PAIRS generated support answers (default 400: the courteous, complete answer chosen over a curt one) with
LoRA rank 8 on every linear layer, the reference being the base with the adapters disabled, beta 0.1, 4 pairs per
step, learning rate 5e-4. Each side runs in its own process, timed from its records in memory to its trained model
(after its imports). Both are then judged the same way on 64 held-out pairs: the share whose DPO reward against the
base ranks the chosen answer first (`pref_acc`). `pairs_per_s` is training pairs per second.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path

from benchmarks.common import measure_in_subprocess, result_line
from benchmarks.sft import STEPS, TOPICS

BATCH, RANK, ALPHA, LEARNING_RATE, BETA, MAX_LENGTH = 4, 8, 16, 5e-4, 0.1, 128
HELD_OUT = 64


def write_pairs(path: Path, count: int, seed: int = 0) -> None:
    """Generated support questions, each with a courteous step-by-step answer (chosen) and a curt one (rejected)."""
    rng = random.Random(seed)
    with path.open("w") as handle:
        for _ in range(count):
            topic = rng.choice(TOPICS)
            steps = rng.sample(STEPS, rng.randint(2, 4))
            prompt = f"my {topic} stopped working, can you help?"
            chosen = f"sorry about your {topic}. please " + " then ".join(steps) + ". tell us if it still fails."
            rejected = f"{rng.choice(steps)}."
            handle.write(json.dumps({"prompt": prompt, "chosen": chosen, "rejected": rejected}) + "\n")


def held_out_accuracy(folder: Path, base: str, records: list[dict]) -> float:
    """The tuned model's DPO-reward preference accuracy against `base` on held-out pairs."""
    from trainers.preference.evaluation import preference_report
    from trainers.registry import MODEL_CARD

    (folder / MODEL_CARD).write_text(
        json.dumps({"base_model": base, "beta": BETA, "params": {"max_length": MAX_LENGTH}})
    )
    return preference_report(folder, records)["metrics"]["preference_accuracy"]


def refinery_side(model: str, data: str, held: str) -> dict[str, float]:
    """Refinery's preference fine-tune, exported merged, then judged on the held-out pairs."""
    from trainers.generative.export import read_records
    from trainers.preference.fit import fit_preferences
    from trainers.preference.params import PreferenceParams

    records = read_records(Path(data))
    started = time.perf_counter()
    params = PreferenceParams(
        model_name_or_path=model,
        batch_size=BATCH,
        max_length=MAX_LENGTH,
        learning_rate=LEARNING_RATE,
        lora_rank=RANK,
        lora_alpha=ALPHA,
        beta=BETA,
        precision="32-true",
        accelerator="cpu",
    )
    result = fit_preferences(records, records[:8], params)
    seconds = time.perf_counter() - started
    out = Path(tempfile.mkdtemp())
    result.module.model.merge_and_unload().save_pretrained(out)
    result.tokenizer.save_pretrained(out)
    return {"work_seconds": seconds, "pref_acc": held_out_accuracy(out, model, read_records(Path(held)))}


def trl_side(model: str, data: str, held: str) -> dict[str, float]:
    """TRL's DPOTrainer: the same model, pairs (as prompt/completion conversations), adapters, beta and batch."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from trainers.generative.export import read_records

    records = read_records(Path(data))
    started = time.perf_counter()
    dataset = Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": r["prompt"]}],
                "chosen": [{"role": "assistant", "content": r["chosen"]}],
                "rejected": [{"role": "assistant", "content": r["rejected"]}],
            }
            for r in records
        ]
    )
    tokenizer = AutoTokenizer.from_pretrained(model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    config = DPOConfig(
        output_dir=tempfile.mkdtemp(),
        beta=BETA,
        max_length=MAX_LENGTH,
        per_device_train_batch_size=BATCH,
        num_train_epochs=1,
        learning_rate=LEARNING_RATE,
        lr_scheduler_type="constant",
        warmup_steps=0,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        use_cpu=True,
        dataloader_num_workers=0,
        seed=0,
        bf16=False,
        gradient_checkpointing=False,
    )
    adapters = LoraConfig(
        task_type="CAUSAL_LM", r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules="all-linear"
    )
    trainer = DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(model),
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=adapters,
    )
    trainer.train()
    seconds = time.perf_counter() - started
    out = Path(tempfile.mkdtemp())
    trainer.model.merge_and_unload().save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {"work_seconds": seconds, "pref_acc": held_out_accuracy(out, model, read_records(Path(held)))}


def main(pairs: int, choice: str) -> None:
    from benchmarks.sft import benchmark_model

    with tempfile.TemporaryDirectory() as tmp:
        model = benchmark_model(Path(tmp), choice, gpu=False, tokenizer=None)
        data, held = Path(tmp) / "train.jsonl", Path(tmp) / "held.jsonl"
        write_pairs(data, pairs)
        write_pairs(held, HELD_OUT, seed=1)
        ours = measure_in_subprocess("benchmarks.dpo", "refinery_side", model, str(data), str(held))
        print("refinery:", ours)
        theirs = measure_in_subprocess("benchmarks.dpo", "trl_side", model, str(data), str(held))
        print("trl:", theirs)
        ours_rate, theirs_rate = pairs / ours["work_seconds"], pairs / theirs["work_seconds"]
        print(
            result_line(
                pairs_per_s=ours_rate,
                trl_pairs_per_s=theirs_rate,
                speedup=ours_rate / theirs_rate,
                peak_rss_mb=ours["peak_rss_mb"],
                trl_peak_rss_mb=theirs["peak_rss_mb"],
                pref_acc=ours["pref_acc"],
                trl_pref_acc=theirs["pref_acc"],
                pairs=pairs,
                model=choice,
            )
        )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.dpo", description=__doc__.splitlines()[0])
    parser.add_argument("pairs", type=int, nargs="?", default=400)
    parser.add_argument("--model", choices=("tiny", "smollm2"), default="tiny", help="what both sides train")
    args = parser.parse_args()
    main(args.pairs, args.model)
