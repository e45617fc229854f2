"""Supervised fine-tuning of a causal language model on Lightning: loss on response tokens only, packed rows,
LoRA adapters through peft, gradient checkpointing, bf16 and DDP/FSDP as Lightning provides them, resumable."""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from trainers.generative.chat import ensure_chat_template
from trainers.generative.packing import (
    IGNORE,
    PADDING_FREE_ATTENTION,
    PackedRow,
    TokenizedExample,
    collate_rows,
    pack_examples,
    tokenize_example,
    unpacked_rows,
)
from trainers.generative.params import SftParams
from trainers.generative.response_loss import response_loss
from trainers.model import clip_gradients, resolve_precision
from trainers.tracking_logger import tracking_loggers

Tokenize = Callable[[object, Mapping, int], list[TokenizedExample]]  # (tokenizer, record, max_length) -> examples


class CausalLMModule(L.LightningModule):
    """A causal LM (optionally wrapped in LoRA adapters) trained on packed rows; val loss is per response token."""

    def __init__(self, model: torch.nn.Module, params: SftParams) -> None:
        super().__init__()
        # train mode: from_pretrained returns the model in eval mode, which Lightning keeps (dropout would stay off)
        self.model, self.params = model.train(), params
        self._val_loss, self._val_tokens = 0.0, 0
        self.val_history: list[float] = []
        self.best: tuple[int, float, dict[str, torch.Tensor]] | None = None  # epoch, val loss, trainable weights

    def training_step(self, batch: dict[str, torch.Tensor], _: int) -> torch.Tensor:
        # no cache: training needs none, and with one transformers would not read a padding-free batch's bounds
        loss = response_loss(self.model, batch)
        examples = int((batch["position_ids"] == 0).sum())  # a padding-free batch is one row of many examples
        self.log("train_loss", loss, prog_bar=True, batch_size=examples)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], _: int) -> None:
        tokens = int((batch["labels"][:, 1:] != IGNORE).sum())
        self._val_loss += float(response_loss(self.model, batch)) * tokens
        self._val_tokens += tokens

    def on_validation_epoch_end(self) -> None:
        # summed over every rank's share of the val rows, so each rank sees the loss of the whole split
        totals = torch.tensor([self._val_loss, float(self._val_tokens)], dtype=torch.float64, device=self.device)
        loss_sum, tokens = self.trainer.strategy.reduce(totals, reduce_op="sum").tolist()
        loss = loss_sum / max(tokens, 1.0)
        self._val_loss, self._val_tokens = 0.0, 0
        self.val_history.append(loss)
        self.log("val_loss", loss)
        self.log("val_perplexity", math.exp(min(loss, 50.0)))
        fitting = self.trainer.state.fn == "fit"
        if fitting and self.params.keep_best and (self.best is None or loss < self.best[1]):
            self.best = (self.current_epoch, loss, self.trainable_weights())

    def trainable_weights(self) -> dict[str, torch.Tensor]:
        """A copy of the weights being trained (the adapters alone under LoRA), on the CPU."""
        return {name: p.detach().to("cpu", copy=True) for name, p in self.model.named_parameters() if p.requires_grad}

    def restore_best(self) -> dict[str, float] | None:
        """Put the best val-loss epoch's weights back (when it is not the last); its epoch and val loss."""
        if self.best is None:
            return None
        epoch, loss, weights = self.best
        if epoch != self.current_epoch:
            trained = dict(self.model.named_parameters())
            with torch.no_grad():
                for name, value in weights.items():
                    trained[name].copy_(value.to(trained[name].device))
        return {"epoch": epoch, "val_loss": round(loss, 6)}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        fused = torch.cuda.is_available() and "fsdp" not in str(self.params.strategy)
        return torch.optim.AdamW(
            trainable, lr=self.params.learning_rate, weight_decay=self.params.weight_decay, fused=fused or None
        )

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        clip_gradients(self, optimizer, self.params.max_grad_norm, "norm")


@dataclass(frozen=True)
class SftData:
    """Token rows for training and validation, and what went into them."""

    train_rows: list[PackedRow]
    val_rows: list[PackedRow]
    train_examples: int
    val_examples: int
    truncated: int


def supervised_example(tokenizer, record: Mapping, max_length: int) -> list[TokenizedExample]:
    """A prompt/response (or chat) record as one example: the loss on the response."""
    return [tokenize_example(tokenizer, record, max_length)]


def prepare_rows(
    tokenizer,
    train: Sequence[Mapping],
    val: Sequence[Mapping],
    params: SftParams,
    tokenize: Tokenize = supervised_example,
) -> SftData:
    """Tokenize both splits (`tokenize`: a record's examples) and pack them (or not) into rows of at most
    `max_length` tokens."""
    tokenized = {
        name: [example for r in records for example in tokenize(tokenizer, r, params.max_length)]
        for name, records in (("train", train), ("val", val))
    }
    rows = pack_examples if params.packing else lambda examples, _: unpacked_rows(examples)
    truncated = sum(example.truncated for example in tokenized["train"])
    return SftData(
        rows(tokenized["train"], params.max_length),
        rows(tokenized["val"], params.max_length),
        len(train),
        len(val),
        truncated,
    )


def load_base(params: SftParams) -> tuple[torch.nn.Module, object]:
    """The base model (LoRA-wrapped when asked) and its tokenizer, with a chat template and a padding token."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainers.generative.base_model import resolve_base_model

    source = resolve_base_model(params.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(source)
    ensure_chat_template(tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    attention = resolve_attention(params.attention)
    model = AutoModelForCausalLM.from_pretrained(source, attn_implementation=attention, **quantized_loading(params))
    if params.quantization == "4bit":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=params.gradient_checkpointing)
    if params.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    if params.lora_rank:
        from peft import LoraConfig, get_peft_model

        adapters = LoraConfig(
            task_type="CAUSAL_LM",
            r=params.lora_rank,
            lora_alpha=params.lora_alpha,
            lora_dropout=params.lora_dropout,
            target_modules="all-linear",
        )
        model = get_peft_model(model, adapters)
        if params.gradient_checkpointing:
            model.enable_input_require_grads()  # checkpointed blocks need a grad-carrying input under LoRA
    return model, tokenizer


def quantized_loading(params: SftParams) -> dict[str, object]:
    """`from_pretrained` arguments that load the base in 4-bit NF4 for QLoRA, which needs a CUDA GPU and
    bitsandbytes; refused clearly without them."""
    if params.quantization != "4bit":
        return {}
    import importlib.util

    if not torch.cuda.is_available() or importlib.util.find_spec("bitsandbytes") is None:
        raise ValueError("quantization: 4bit (QLoRA) needs a CUDA GPU and bitsandbytes (pip install bitsandbytes)")
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    config = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute, bnb_4bit_use_double_quant=True
    )
    return {"quantization_config": config, "device_map": {"": int(os.environ.get("LOCAL_RANK", "0"))}}


def resolve_attention(choice: str) -> str:
    """The attention kernel to load: `auto` is flash-attention on a GPU where the flash_attn package is installed
    (padding-free batches), else sdpa."""
    if choice != "auto":
        return choice
    import importlib.util

    if torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def loader(items: Sequence, params: SftParams, collate: Callable[[list], dict], shuffle: bool) -> DataLoader:
    """Batches of `params.batch_size` items (rows or pairs), seeded when shuffled."""
    generator = torch.Generator().manual_seed(params.seed)
    return DataLoader(items, batch_size=params.batch_size, shuffle=shuffle, generator=generator, collate_fn=collate)


def lightning_trainer(params: SftParams, callbacks: list, logger: list, checkpoints: Path | None) -> L.Trainer:
    """The Lightning trainer of a causal LM's fine-tune (SFT or preferences): the params' hardware and epochs,
    logging to the loggers (the metrics CSV first), no progress bar (progress goes to the run log)."""
    return L.Trainer(
        max_epochs=params.max_epochs,
        accelerator=params.accelerator,
        devices=params.devices,
        strategy=params.strategy,
        precision=resolve_precision(params.precision),
        gradient_clip_val=params.max_grad_norm,
        accumulate_grad_batches=params.accumulate_grad_batches,
        callbacks=callbacks,
        logger=logger,
        log_every_n_steps=params.log_every_n_steps,
        enable_checkpointing=checkpoints is not None,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )


@dataclass
class SftResult:
    """What a fine-tune did: val loss before and after, rows, seconds, and the trained model."""

    module: CausalLMModule
    tokenizer: object
    data: SftData
    val_loss_before: float
    val_loss_after: float  # of the exported weights (the best epoch's when kept)
    seconds: float
    precision: str
    metrics_csv: str = ""  # train loss and learning rate per step, val loss and perplexity per epoch
    best: dict[str, float] | None = None  # the exported epoch and its val loss, when the best one is kept


def response_tokens(batch: dict[str, torch.Tensor]) -> int:
    """The tokens of a batch the loss is taken on (the responses')."""
    return int((batch["labels"] != IGNORE).sum())


def progress_callbacks(params: SftParams, log: Callable[[str], None] | None, checkpoints: Path | None) -> list:
    """Progress lines (when there is a log), the learning rate per step, and resumable checkpoints."""
    from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint

    from trainers.callbacks import StepProgress, ValLossReport

    callbacks: list = [LearningRateMonitor(logging_interval="step")]
    if log is not None:
        callbacks.append(StepProgress(log, params.log_every_n_steps, response_tokens, "response tokens"))
        callbacks.append(ValLossReport(log))
    if checkpoints is not None:
        callbacks.append(ModelCheckpoint(dirpath=checkpoints, save_last=True, save_top_k=0))
    return callbacks


def fit_sft(
    train: Sequence[Mapping],
    val: Sequence[Mapping],
    params: SftParams,
    checkpoints: Path | None = None,
    log: Callable[[str], None] | None = None,
    *,
    tokenize: Tokenize = supervised_example,
) -> SftResult:
    """Fine-tune on `train`, measuring val loss before and after each epoch; resumes from `checkpoints/last.ckpt`;
    progress goes to `log` every `log_every_n_steps` steps, the metrics to the result's `metrics.csv` text.
    `tokenize` turns a record into examples (default: a prompt and its response, the loss on the response)."""
    from lightning.pytorch.loggers import CSVLogger

    L.seed_everything(params.seed, workers=True, verbose=False)
    model, tokenizer = load_base(params)
    data = prepare_rows(tokenizer, train, val, params, tokenize)
    if not data.train_rows or not data.val_rows:
        raise ValueError(f"SFT needs train and val examples, got {data.train_examples} and {data.val_examples}")
    module = CausalLMModule(model, params)
    precision = resolve_precision(params.precision)
    resume = str(checkpoints / "last.ckpt") if checkpoints and (checkpoints / "last.ckpt").is_file() else None
    with tempfile.TemporaryDirectory(prefix="refinery-sft-") as scratch:
        logger = CSVLogger(scratch, name="", version="")
        loggers = [logger, *tracking_loggers()]
        trainer = lightning_trainer(params, progress_callbacks(params, log, checkpoints), loggers, checkpoints)
        pad_id = tokenizer.pad_token_id
        padding_free = model.config._attn_implementation in PADDING_FREE_ATTENTION
        collate = partial(collate_rows, pad_id=pad_id, padding_free=padding_free)
        val_loader = loader(data.val_rows, params, collate, shuffle=False)
        trainer.validate(module, val_loader, verbose=False)
        before = module.val_history[-1]
        if log is not None:
            log(f"fine-tuning on {data.train_examples} examples in {len(data.train_rows)} rows, val loss {before:.4f}")
        started = time.perf_counter()
        trainer.fit(module, loader(data.train_rows, params, collate, shuffle=True), val_loader, ckpt_path=resume)
        seconds = time.perf_counter() - started
        metrics_file = Path(logger.log_dir) / "metrics.csv"
        metrics_csv = metrics_file.read_text() if metrics_file.is_file() else ""
    best = module.restore_best()
    after = best["val_loss"] if best else module.val_history[-1]
    return SftResult(module, tokenizer, data, before, after, seconds, precision, metrics_csv, best)
