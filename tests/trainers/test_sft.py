"""Supervised fine-tuning of a tiny causal LM built in code: response-only loss, packing that never lets one example
see another, a val loss that drops, and an export that reloads to the same logits (merged or kept adapters)."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest
import torch

from trainers.generative.chat import DEFAULT_CHAT_TEMPLATE, ConversationError, as_messages
from trainers.generative.export import export_causal_lm, write_card
from trainers.generative.generation import load_causal_lm, normalized, reference_metrics
from trainers.generative.packing import (
    IGNORE,
    TokenizedExample,
    collate_rows,
    pack_examples,
    tokenize_example,
    unpacked_rows,
)
from trainers.generative.params import SftParams
from trainers.generative.sft import fit_sft
from trainers.generative.train import run_sft
from trainers.reports import read_metrics_csv_text

ITEMS = ["printer", "laptop", "badge", "vpn", "monitor", "phone", "mouse", "keyboard"]
ACTIONS = {"reset": "restart", "order": "request", "fix": "repair"}


def instructions(count: int, seed: int) -> list[dict[str, str]]:
    """A generated instruction set: the response follows from the prompt by a rule a small model can learn."""
    rng = random.Random(seed)
    records = []
    for _ in range(count):
        item, verb = rng.choice(ITEMS), rng.choice(list(ACTIONS))
        records.append(
            {"prompt": f"please {verb} my {item}", "response": f"we will {ACTIONS[verb]} your {item} today."}
        )
    return records


@pytest.fixture(scope="module")
def tiny_lm(tiny_causal_lm: Path) -> Path:
    return tiny_causal_lm


@pytest.fixture(scope="module")
def tokenizer(tiny_lm: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_lm)


def test_only_the_response_and_its_end_carry_labels(tokenizer) -> None:
    example = tokenize_example(tokenizer, {"prompt": "please reset my vpn", "response": "we will restart it."}, 64)
    prompt_length = example.labels.index(next(label for label in example.labels if label != IGNORE))
    assert all(label == IGNORE for label in example.labels[:prompt_length])
    assert example.labels[prompt_length:] == example.input_ids[prompt_length:]
    assert example.input_ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(example.input_ids[prompt_length:-1]) == "we will restart it."
    assert "<|assistant|>" in tokenizer.decode(example.input_ids[:prompt_length]).replace(" ", "")


def test_a_chat_record_trains_on_its_last_assistant_message_and_a_bad_one_is_named() -> None:
    messages, response = as_messages(
        {
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
            ]
        }
    )
    assert [m["role"] for m in messages] == ["system", "user"] and response == "hello"
    with pytest.raises(ConversationError, match="last message must be the assistant"):
        as_messages({"messages": [{"role": "user", "content": "hi"}]})
    with pytest.raises(ConversationError, match=r"messages\[0\]\.role: 'robot'"):
        as_messages({"messages": [{"role": "robot", "content": "hi"}]})


def test_packed_rows_reset_positions_and_never_attend_across_examples(tokenizer) -> None:
    examples = [tokenize_example(tokenizer, record, 64) for record in instructions(5, seed=1)]
    rows = pack_examples(examples, max_length=64)
    assert len(rows) < len(examples) and sum(len(r.input_ids) for r in rows) == sum(len(e.input_ids) for e in examples)
    batch = collate_rows(rows, tokenizer.pad_token_id)
    mask, segments = batch["attention_mask"][0, 0], torch.tensor(rows[0].segments)
    for query in range(len(segments)):
        seen = mask[query, : len(segments)].nonzero().flatten()
        assert set(segments[seen].tolist()) == {int(segments[query])}  # only its own example
        assert seen.max() == query  # and only what came before it
    first_of_second = rows[0].segments.index(1)
    assert rows[0].position_ids[first_of_second] == 0
    assert batch["labels"][0, first_of_second] == IGNORE  # no loss predicts one example from another


@pytest.mark.parametrize(("attention", "padding_free"), [("sdpa", False), ("sdpa", True), ("flex_attention", True)])
def test_packing_gives_each_example_the_logits_it_has_alone(
    tiny_lm: Path, tokenizer, attention: str, padding_free: bool
) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_lm, attn_implementation=attention).eval()
    alone_model = AutoModelForCausalLM.from_pretrained(tiny_lm, attn_implementation="sdpa").eval()
    examples = [tokenize_example(tokenizer, record, 64) for record in instructions(7, seed=2)]
    rows = pack_examples(examples, max_length=64)  # several rows, the shorter ones padded in the dense batch
    assert len(rows) > 1 and len({len(row.input_ids) for row in rows}) > 1
    batch = collate_rows(rows, tokenizer.pad_token_id, padding_free=padding_free)
    assert ("attention_mask" in batch) is not padding_free
    starts = torch.tensor([0, *itertools.accumulate(len(row.input_ids) for row in rows)])
    with torch.no_grad():
        together = model(**{k: v for k, v in batch.items() if k != "labels"}, use_cache=False).logits
        for number, row in enumerate(rows):
            laid = together[0, starts[number] : starts[number + 1]] if padding_free else together[number]
            segments = torch.tensor(row.segments)
            for segment in range(int(segments.max()) + 1):
                ids = [t for t, s in zip(row.input_ids, row.segments, strict=True) if s == segment]
                alone = alone_model(input_ids=torch.tensor([ids])).logits[0]
                torch.testing.assert_close(laid[: len(row.input_ids)][segments == segment], alone, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("padding_free", [False, True], ids=["masked", "padding-free"])
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_the_response_only_loss_equals_the_models_own_loss_and_gradients(
    tiny_lm: Path, tokenizer, padding_free: bool, lora: bool
) -> None:
    from transformers import AutoModelForCausalLM

    from trainers.generative.response_loss import plain_head, response_loss

    # sdpa also for the padding-free batch: the CPU has no flex backward, and both losses see the same attention
    model = AutoModelForCausalLM.from_pretrained(tiny_lm, attn_implementation="sdpa")
    if lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    assert plain_head(model.get_base_model() if lora else model)
    rows = pack_examples([tokenize_example(tokenizer, r, 64) for r in instructions(6, seed=4)], max_length=64)
    batch = collate_rows(rows, tokenizer.pad_token_id, padding_free=padding_free)
    trainable = [p for p in model.parameters() if p.requires_grad]
    expected = model(**batch, use_cache=False).loss
    expected_grads = torch.autograd.grad(expected, trainable)
    fast = response_loss(model, batch)
    fast_grads = torch.autograd.grad(fast, trainable)
    torch.testing.assert_close(fast, expected, atol=1e-5, rtol=1e-5)
    for got, want in zip(fast_grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_a_model_whose_logits_are_more_than_its_head_keeps_its_own_loss(tiny_lm: Path) -> None:
    from transformers import AutoModelForCausalLM

    from trainers.generative.response_loss import plain_head

    model = AutoModelForCausalLM.from_pretrained(tiny_lm)
    model.config.final_logit_softcapping = 30.0
    assert not plain_head(model)


def test_no_loss_predicts_an_examples_first_token_from_the_example_before(tokenizer) -> None:
    documents = [TokenizedExample([5, 6, 7], [5, 6, 7]), TokenizedExample([8, 9], [8, 9])]
    rows = pack_examples(documents, max_length=8)
    for padding_free in (False, True):
        batch = collate_rows(rows, tokenizer.pad_token_id, padding_free=padding_free)
        assert batch["labels"][0].tolist()[:5] == [IGNORE, 6, 7, IGNORE, 9]


def test_a_long_prompt_loses_its_start_so_the_response_keeps_tokens_to_learn(tokenizer) -> None:
    record = {"prompt": "word " * 200 + "the real question", "response": "we will restart your printer today."}

    example = tokenize_example(tokenizer, record, max_length=32)

    assert example.truncated and len(example.input_ids) == 32
    learned = [label for label in example.labels if label != IGNORE]
    response = tokenizer(record["response"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert learned == response  # the whole response, with its end
    assert "question" in tokenizer.decode(example.input_ids)  # the prompt's latest words stay
    assert not tokenize_example(tokenizer, instructions(1, seed=1)[0], max_length=64).truncated


def test_best_fit_packing_fills_rows_and_keeps_every_token(tokenizer) -> None:
    examples = [tokenize_example(tokenizer, record, 64) for record in instructions(300, seed=12)]
    rows = pack_examples(examples, max_length=64)
    assert sum(len(r.input_ids) for r in rows) == sum(len(e.input_ids) for e in examples)
    assert max(len(r.input_ids) for r in rows) <= 64
    shortest = min(len(e.input_ids) for e in examples)
    assert sum(64 - len(r.input_ids) >= shortest for r in rows) <= 1  # no two rows could have shared an example


@pytest.mark.slow
@pytest.mark.parametrize("adapters", ["merge", "keep"])
def test_sft_lowers_val_loss_and_the_export_reloads_to_the_same_logits(
    tiny_lm: Path, tokenizer, tmp_path: Path, adapters: str
) -> None:
    params = SftParams(
        model_name_or_path=str(tiny_lm),
        max_epochs=3,
        batch_size=8,
        max_length=96,
        learning_rate=1e-2,
        lora_rank=8,
        adapters=adapters,
        eval_prompts=8,
    )
    result = fit_sft(instructions(240, seed=3), instructions(24, seed=4), params)
    probe = torch.tensor([tokenize_example(tokenizer, instructions(1, seed=9)[0], 96).input_ids])
    trained = result.module.model.eval()
    with torch.no_grad():
        expected = trained(input_ids=probe).logits

    output = export_causal_lm(result, params, tmp_path / "model")
    write_card(output, result, params, held_out_evaluation_stub(), {"dataset_versions": ["v1"]})
    reloaded, _ = load_causal_lm(output)

    assert result.val_loss_after < result.val_loss_before - 0.5  # the stated margin: half a nat per token
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=probe).logits, expected, atol=1e-5, rtol=1e-5)
    assert (output / "adapter").is_dir() == (adapters == "keep")
    card = json.loads((output / "model_card.json").read_text())
    assert card["model_kind"] == "causal_lm" and card["base_model"] == str(tiny_lm)
    assert card["adapters"]["rank"] == 8 and card["adapters"]["export"] == adapters
    assert card["dataset_versions"] == ["v1"]


def held_out_evaluation_stub() -> dict:
    return {"rouge_l": None, "exact_match": None, "samples": []}


def recording(collate, rows_per_batch: list[int]):
    """`collate`, noting how many rows each padding-free batch it builds has."""

    def collate_and_note(rows, pad_id, *, padding_free=False):
        batch = collate(rows, pad_id, padding_free=padding_free)
        if padding_free:
            rows_per_batch.append(batch["input_ids"].shape[0])
        return batch

    return collate_and_note


def test_a_padding_free_fine_tune_follows_the_masked_one_step_for_step(
    tiny_lm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trainers.generative.sft as sft

    settings = {"model_name_or_path": str(tiny_lm), "max_epochs": 1, "batch_size": 8, "max_length": 96}
    train, val = instructions(48, seed=3), instructions(16, seed=4)
    masked = fit_sft(train, val, SftParams(**settings, learning_rate=1e-2, attention="sdpa"))
    # The batches a GPU's flash or flex kernel gets, one unpadded row with position ids; FlexAttention has no
    # backward on a CPU, so here sdpa reads their bounds (the forward of each kernel is pinned above).
    laid_out: list[int] = []
    monkeypatch.setattr(sft, "PADDING_FREE_ATTENTION", ("sdpa",))
    monkeypatch.setattr(sft, "collate_rows", recording(sft.collate_rows, laid_out))
    padding_free = fit_sft(train, val, SftParams(**settings, learning_rate=1e-2, attention="sdpa"))
    assert laid_out and set(laid_out) == {1}  # every batch one row
    assert padding_free.val_loss_before == pytest.approx(masked.val_loss_before, abs=1e-4)
    assert padding_free.val_loss_after == pytest.approx(masked.val_loss_after, abs=1e-3)
    assert padding_free.val_loss_after < padding_free.val_loss_before
    with pytest.raises(ValueError, match="attention must be one of"):
        SftParams(attention="eager")


@pytest.mark.slow
def test_a_full_fine_tune_reports_its_held_out_answers_in_the_card(tiny_lm: Path, tmp_path: Path) -> None:
    params = SftParams(
        model_name_or_path=str(tiny_lm),
        max_epochs=3,
        batch_size=8,
        max_length=96,
        learning_rate=3e-3,
        lora_rank=0,
        eval_prompts=8,
    )
    report = run_sft(instructions(240, seed=3), instructions(24, seed=4), tmp_path / "model", params)

    assert report["val_loss"] < report["val_loss_before"] / 2
    assert report["rouge_l"] > 0.5  # the answers follow the references' pattern
    card = json.loads((tmp_path / "model" / "model_card.json").read_text())
    assert card["adapters"] is None and card["held_out"]["prompts"] == 8
    assert len(card["held_out"]["samples"]) == 5 and {"prompt", "reference", "answer"} <= set(
        card["held_out"]["samples"][0]
    )


def test_reference_metrics_ignore_case_spacing_and_punctuation() -> None:
    assert normalized("We will restart it .") == normalized("we will  restart it.")
    scores = reference_metrics(["we will restart it.", "we will fix it"], ["We will restart it .", "we will repair it"])
    assert scores == {"exact_match": 0.5, "rouge_l": 0.875}


def test_sft_settings_refuse_unknown_keys_and_impossible_combinations() -> None:
    with pytest.raises(ValueError, match="unknown SFT settings: lora_rnak"):
        SftParams.from_json('{"lora_rnak": 4}')
    with pytest.raises(ValueError, match="adapters: keep needs LoRA"):
        SftParams(lora_rank=0, adapters="keep")
    with pytest.raises(ValueError, match="use ddp"):
        SftParams(strategy="fsdp")
    assert "add_generation_prompt" in DEFAULT_CHAT_TEMPLATE
    assert unpacked_rows([]) == []


def test_qlora_is_refused_clearly_without_a_gpu_and_bitsandbytes(tiny_lm: Path) -> None:
    with pytest.raises(ValueError, match="adapters: keep"):
        SftParams(lora_rank=8, quantization="4bit")
    params = SftParams(model_name_or_path=str(tiny_lm), lora_rank=8, adapters="keep", quantization="4bit")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: QLoRA would load")
    with pytest.raises(ValueError, match="needs a CUDA GPU and bitsandbytes"):
        fit_sft(instructions(16, seed=5), instructions(4, seed=6), params)


@pytest.mark.slow
def test_a_fine_tune_run_again_with_more_epochs_continues_from_its_last_checkpoint(
    tiny_lm: Path, tmp_path: Path
) -> None:
    train, val = instructions(64, seed=7), instructions(8, seed=8)
    first = SftParams(model_name_or_path=str(tiny_lm), max_epochs=1, batch_size=4, max_length=96, lora_rank=4)
    checkpoints = tmp_path / "checkpoints"
    interrupted = fit_sft(train, val, first, checkpoints)
    steps_per_epoch = interrupted.module.trainer.global_step
    assert (checkpoints / "last.ckpt").is_file() and steps_per_epoch > 0

    resumed = fit_sft(train, val, SftParams(**{**first.to_dict(), "max_epochs": 2}), checkpoints)

    assert resumed.module.trainer.global_step == 2 * steps_per_epoch  # one more epoch, not two
    assert resumed.module.trainer.current_epoch == 2


@pytest.mark.slow
def test_torchrun_trains_on_two_gloo_processes_and_rank_zero_exports(tiny_lm: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    for name, records in (("train", instructions(96, seed=10)), ("val", instructions(12, seed=11))):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    params = {
        "model_name_or_path": str(tiny_lm),
        "max_epochs": 2,
        "batch_size": 4,
        "max_length": 96,
        "learning_rate": 1e-2,
        "accelerator": "cpu",
        "devices": "2",
        "strategy": "ddp",
        "eval_prompts": 4,
    }
    torchrun = Path(sys.executable).with_name("torchrun")
    command = [
        str(torchrun),
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "trainers.generative.train",
        "--train",
        str(tmp_path / "train.jsonl"),
        "--val",
        str(tmp_path / "val.jsonl"),
        "--output",
        str(tmp_path / "model"),
        "--params",
        json.dumps(params),
    ]

    completed = subprocess.run(command, capture_output=True, text=True, timeout=600)

    assert completed.returncode == 0, completed.stderr[-3000:]
    reports = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == 1  # rank 0 alone exports and reports
    assert reports[0]["val_loss"] < reports[0]["val_loss_before"]
    card = json.loads((tmp_path / "model" / "model_card.json").read_text())
    assert card["params"]["devices"] == "2" and card["params"]["strategy"] == "ddp"


def test_a_fine_tune_reports_progress_and_writes_its_metrics_and_curves(tiny_lm: Path, tmp_path: Path) -> None:
    params = SftParams(
        model_name_or_path=str(tiny_lm),
        max_epochs=2,
        batch_size=4,
        max_length=96,
        learning_rate=1e-2,
        lora_rank=8,
        log_every_n_steps=2,
    )
    lines: list[str] = []
    result = fit_sft(instructions(48, seed=3), instructions(8, seed=4), params, log=lines.append)
    steps = [line for line in lines if line.startswith("step ")]
    assert steps and all("response tokens/s" in line and "ETA" in line and "loss" in line for line in steps)
    assert [line.split(":")[0] for line in lines if line.startswith("epoch ")] == ["epoch 0", "epoch 1"]
    rows = read_metrics_csv_text(result.metrics_csv)
    assert sum("train_loss" in row for row in rows) >= 2 and any(k.startswith("lr-") for row in rows for k in row)
    val = [row["val_loss"] for row in rows if "val_loss" in row]
    assert len(val) == 3  # before training, then each epoch
    assert result.best["val_loss"] == round(min(val[1:]), 6) == round(result.val_loss_after, 6)
    output = export_causal_lm(result, params, tmp_path / "model")
    assert (output / "metrics.csv").read_text() == result.metrics_csv
    assert (output / "training_curves.png").read_bytes().startswith(b"\x89PNG")
