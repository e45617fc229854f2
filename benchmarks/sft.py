"""`python -m benchmarks.sft [EXAMPLES] [--gpu] [--tokenizer DIR] [--model smollm2]`: Refinery's SFT trainer against
TRL's `SFTTrainer` on the same tiny Llama, data, LoRA adapters, packing and batch, on the CPU (or, with `--gpu`, a
GPT-2-small-sized Llama in bf16 mixed precision on both sides, rows of 1,024 tokens, and a third run of Refinery
with QLoRA when bitsandbytes is installed; the GPU sides also report their peak GPU memory). `--model smollm2`
trains the real pretrained SmolLM2-135M-Instruct Refinery ships as its default base instead (size a CPU run in
hundreds of examples).

Both sides start from the same saved tiny model (built in code: no hub), train one epoch over EXAMPLES generated
instruction/response pairs (default 2,000) with LoRA rank 8 on every linear layer, loss on the response only,
examples packed best-fit into rows of 256 tokens, 8 rows per step, learning rate 1e-3. Each side runs in its own
process and is timed from its records in memory to its trained model (after its imports; tokenizing, packing and
model loading included; no saving). Refinery's time also holds its val pass before and after (16 examples).
`samples_per_s` is examples per second; `speedup` is Refinery's over TRL's. `--attention` picks Refinery's kernel
(default auto: flash-attention on a GPU where installed, else sdpa with a dense packing mask); flash_attention_2 and
flex_attention get padding-free batches, each example's bounds in its position ids.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import measure_in_subprocess, result_line

BATCH, RANK, ALPHA, LEARNING_RATE = 8, 8, 16, 1e-3
CPU = {"max_length": 256, "precision": "32-true", "gpu": False}
GPU = {"max_length": 1024, "precision": "bf16-mixed", "gpu": True}
TOPICS = ["printer", "laptop", "badge", "vpn", "monitor", "phone", "invoice", "refund", "password", "account"]
STEPS = [
    "open the settings page",
    "restart the device",
    "sign in again",
    "contact the help desk",
    "check the cable",
    "wait ten minutes",
    "clear the browser cache",
    "reset the password",
]


def write_instructions(path: Path, count: int, seed: int = 0) -> None:
    """Generated support instructions with multi-sentence answers of varying length, as JSON Lines."""
    rng = random.Random(seed)
    with path.open("w") as handle:
        for _ in range(count):
            topic = rng.choice(TOPICS)
            steps = rng.sample(STEPS, rng.randint(2, 5))
            prompt = f"my {topic} is not working since this morning, what should i do?"
            response = f"sorry about your {topic}. " + " then ".join(steps) + ". if it still fails, reply here."
            handle.write(json.dumps({"prompt": prompt, "response": response}) + "\n")


def gpu_peak_mb() -> float:
    """Peak GPU memory this process allocated (0 on the CPU)."""
    import torch

    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0


def refinery_side(model: str, data: str, setup: str, quantization: str = "none") -> dict[str, float]:
    """Refinery's trainer: one epoch, no evaluation beyond its val pass on 16 examples."""
    from trainers.generative.export import read_records
    from trainers.generative.params import SftParams
    from trainers.generative.sft import fit_sft

    settings = json.loads(setup)
    records = read_records(Path(data))
    started = time.perf_counter()  # after the imports: each side is timed on its work alone
    params = SftParams(
        model_name_or_path=model,
        max_epochs=1,
        batch_size=BATCH,
        max_length=settings["max_length"],
        learning_rate=LEARNING_RATE,
        lora_rank=RANK,
        lora_alpha=ALPHA,
        precision=settings["precision"],
        attention=settings.get("attention", "auto"),
        quantization=quantization,
        adapters="keep" if quantization != "none" else "merge",
    )
    result = fit_sft(records, records[:16], params)
    return {
        "examples": len(records),
        "rows": len(result.data.train_rows),
        "val_loss": result.val_loss_after,
        "work_seconds": time.perf_counter() - started,
        "gpu_peak_mb": gpu_peak_mb(),
    }


def trl_side(model: str, data: str, setup: str) -> dict[str, float]:
    """TRL's SFTTrainer: the same model, data (as prompt/completion conversations), adapters, packing and batch."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from trainers.generative.export import read_records

    settings = json.loads(setup)
    records = read_records(Path(data))
    started = time.perf_counter()
    dataset = Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": r["prompt"]}],
                "completion": [{"role": "assistant", "content": r["response"]}],
            }
            for r in records
        ]
    )
    tokenizer = AutoTokenizer.from_pretrained(model)
    config = SFTConfig(
        output_dir=tempfile.mkdtemp(),
        max_length=settings["max_length"],
        packing=True,
        per_device_train_batch_size=BATCH,
        num_train_epochs=1,
        learning_rate=LEARNING_RATE,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        use_cpu=not settings["gpu"],
        dataloader_num_workers=0,
        seed=0,
        completion_only_loss=True,
        gradient_checkpointing=False,
        bf16=settings["gpu"],  # like Refinery's bf16-mixed: fp32 weights, bf16 autocast
        fp16=False,
    )  # TRL defaults bf16 and checkpointing on
    adapters = LoraConfig(
        task_type="CAUSAL_LM", r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules="all-linear"
    )
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(model),
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=adapters,
    )
    settings = {
        k: getattr(trainer.args, k)
        for k in (
            "gradient_checkpointing",
            "bf16",
            "packing",
            "packing_strategy",
            "padding_free",
            "per_device_train_batch_size",
            "max_length",
        )
    }
    print("trl settings:", settings, file=sys.stderr)
    trained = trainer.train()
    return {
        "examples": len(records),
        "rows": len(trainer.train_dataset),
        "train_loss": trained.training_loss,
        "work_seconds": time.perf_counter() - started,
        "gpu_peak_mb": gpu_peak_mb(),
    }


def benchmark_model(folder: Path, choice: str, gpu: bool, tokenizer: str | None) -> str:
    """The model both sides train: a tiny Llama built in `folder`, or the shipped SmolLM2 (converted once)."""
    from trainers.generative.base_model import resolve_base_model
    from trainers.generative.tiny import SMALL_SIZES, TINY_SIZES, build_tiny_causal_lm

    if choice == "smollm2":
        return resolve_base_model("")
    sizes = SMALL_SIZES if gpu else TINY_SIZES
    return str(build_tiny_causal_lm(folder / "llama", sizes=sizes, tokenizer_source=tokenizer))


def main(examples: int, gpu: bool, tokenizer: str | None, choice: str = "tiny", attention: str = "auto") -> None:
    import importlib.util

    settings = {**(GPU if gpu else CPU), "attention": attention}
    with tempfile.TemporaryDirectory() as tmp:
        model = benchmark_model(Path(tmp), choice, gpu, tokenizer)
        data = Path(tmp) / "train.jsonl"
        write_instructions(data, examples)
        setup = json.dumps(settings)
        ours = measure_in_subprocess("benchmarks.sft", "refinery_side", str(model), str(data), setup)
        print("refinery:", ours)
        theirs = measure_in_subprocess("benchmarks.sft", "trl_side", str(model), str(data), setup)
        print("trl:", theirs)
        ours_rate, theirs_rate = examples / ours["work_seconds"], examples / theirs["work_seconds"]
        figures = {
            "samples_per_s": ours_rate,
            "trl_samples_per_s": theirs_rate,
            "speedup": ours_rate / theirs_rate,
            "rows": int(ours["rows"]),
            "trl_rows": int(theirs["rows"]),
            "examples": examples,
            "model": choice,
            "attention": attention,
            "val_loss": ours["val_loss"],
            "trl_train_loss": theirs["train_loss"],
            "peak_rss_mb": ours["peak_rss_mb"],
            "trl_peak_rss_mb": theirs["peak_rss_mb"],
        }
        if gpu:
            figures.update(gpu_peak_mb=ours["gpu_peak_mb"], trl_gpu_peak_mb=theirs["gpu_peak_mb"])
        if gpu and importlib.util.find_spec("bitsandbytes") is not None:
            qlora = measure_in_subprocess("benchmarks.sft", "refinery_side", str(model), str(data), setup, "4bit")
            print("refinery qlora:", qlora)
            figures.update(
                qlora_samples_per_s=examples / qlora["work_seconds"],
                qlora_gpu_peak_mb=qlora["gpu_peak_mb"],
                qlora_val_loss=qlora["val_loss"],
            )
        print(result_line(**figures))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.sft", description=__doc__.splitlines()[0])
    parser.add_argument("examples", type=int, nargs="?", default=2000)
    parser.add_argument("--gpu", action="store_true", help="a GPT-2-small-sized model in bf16 on the GPU")
    parser.add_argument("--tokenizer", help="a tokenizer folder (default: the embedded MiniLM's)")
    parser.add_argument("--model", choices=("tiny", "smollm2"), default="tiny", help="what both sides train")
    parser.add_argument("--attention", default="auto", help="Refinery's attention kernel (SftParams.attention)")
    args = parser.parse_args()
    main(args.examples, args.gpu, args.tokenizer, args.model, args.attention)
