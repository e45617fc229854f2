"""Lightning data module over a training bundle: pre-tokenized, length-bucketed, dynamically padded."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler

from trainers.bundle import read_split
from trainers.encoding import encode


class LengthBucketSampler(Sampler[list[int]]):
    """Batches of similar length, shuffled per epoch; each distributed rank takes an equal shard.

    Sorting within windows of `bucket_batches` batches keeps padding low without making batch
    order predictable; every rank gets the same number of batches, so DDP never waits forever.
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int, shuffle: bool, bucket_batches: int = 50):
        self.lengths, self.batch_size, self.seed, self.shuffle = lengths, batch_size, seed, shuffle
        self.bucket_batches, self.epoch, self.skip = bucket_batches, 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _shard(self) -> list[int]:
        indices = list(range(len(self.lengths)))
        if self.shuffle:
            random.Random(self.seed + self.epoch).shuffle(indices)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            world, rank = dist.get_world_size(), dist.get_rank()
            indices += indices[: (-len(indices)) % world]
            indices = indices[rank::world]
        return indices

    def _batches(self) -> list[list[int]]:
        indices, window = self._shard(), self.batch_size * self.bucket_batches
        batches = []
        for start in range(0, len(indices), window):
            chunk = sorted(indices[start : start + window], key=self.lengths.__getitem__)
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        if self.shuffle:
            random.Random(self.seed + self.epoch + 1).shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        skip, self.skip = self.skip, 0  # batches already trained on before a resume
        yield from self._batches()[skip:]

    def __len__(self) -> int:
        return len(self._batches())


class PaddingCollator:
    """Pads a batch of token-id lists to its own longest member."""

    def __init__(self, encoded: list[list[int]], labels: list[int], pad_id: int):
        self.encoded, self.labels, self.pad_id = encoded, labels, pad_id

    def __call__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        width = max(len(self.encoded[i]) for i in indices)
        input_ids = torch.full((len(indices), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(indices), width), dtype=torch.long)
        for row, index in enumerate(indices):
            ids = self.encoded[index]
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            attention[row, : len(ids)] = 1
        labels = torch.tensor([self.labels[i] for i in indices], dtype=torch.long)
        return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


class ResumableDataLoader(DataLoader):
    """A DataLoader whose position survives a checkpoint: Lightning saves `state_dict` with the
    checkpoint and gives it back on resume, and the sampler skips the batches already trained on."""

    def __init__(self, *args, completed_batches=lambda: 0, current_epoch=lambda: 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.completed_batches, self.current_epoch = completed_batches, current_epoch

    def __iter__(self):
        # Lightning calls set_epoch on samplers, not on batch samplers: each epoch gets its own order here.
        self.batch_sampler.set_epoch(self.current_epoch())
        return super().__iter__()

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.batch_sampler.epoch, "completed": int(self.completed_batches())}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.batch_sampler.set_epoch(state["epoch"])
        self.batch_sampler.skip = state["completed"]


class TextClassificationData(L.LightningDataModule):
    """Train and val splits of a bundle, tokenized once with the model's fast tokenizer."""

    def __init__(
        self,
        bundle: Path,
        tokenizer,
        label_map: dict[str, int],
        batch_size: int = 32,
        max_length: int = 128,
        seed: int = 13,
        shuffle: bool = True,
        truncation: str = "head",
    ):
        super().__init__()
        self.bundle, self.tokenizer, self.label_map = bundle, tokenizer, label_map
        self.batch_size, self.max_length, self.seed, self.shuffle = batch_size, max_length, seed, shuffle
        self.truncation = truncation
        self.splits: dict[str, tuple[list[list[int]], list[int]]] = {}

    def setup(self, stage: str | None = None) -> None:
        for split in ("train", "val"):
            if split not in self.splits:
                texts, labels = read_split(self.bundle, split, self.label_map)
                encoded = encode(self.tokenizer, texts, self.max_length, self.truncation)
                self.splits[split] = (encoded, labels)

    def label_counts(self) -> list[int]:
        """Training examples per label id."""
        self.setup()
        counts = [0] * len(self.label_map)
        for label in self.splits["train"][1]:
            counts[label] += 1
        return counts

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        encoded, labels = self.splits[split]
        sampler = LengthBucketSampler([len(e) for e in encoded], self.batch_size, self.seed, shuffle)
        collate = PaddingCollator(encoded, labels, self.tokenizer.pad_token_id or 0)
        # Each loader draws its iterator's base seed from its own generator, not the global RNG that
        # dropout uses, so a resumed run's extra iterator does not shift dropout.
        generator = torch.Generator().manual_seed(self.seed)
        if split != "train":
            return DataLoader(range(len(encoded)), batch_sampler=sampler, collate_fn=collate, generator=generator)

        def completed() -> int:
            # Checkpoints are written in on_train_batch_end, before Lightning counts the batch as
            # completed; on restart it counts it, so the batches to skip are those processed.
            return self.trainer.fit_loop.epoch_loop.batch_progress.current.processed if self.trainer else 0

        def epoch() -> int:
            return self.trainer.current_epoch if self.trainer else 0

        return ResumableDataLoader(
            range(len(encoded)),
            batch_sampler=sampler,
            collate_fn=collate,
            completed_batches=completed,
            current_epoch=epoch,
        )

    def train_batches(self) -> int:
        """Batches per epoch on this process (its rank's shard under DDP)."""
        self.setup()
        lengths = [len(e) for e in self.splits["train"][0]]
        return len(LengthBucketSampler(lengths, self.batch_size, self.seed, self.shuffle))

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=self.shuffle)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)
