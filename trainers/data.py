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


class LengthBucketSampler(Sampler[list[int]]):
    """Batches of similar length, shuffled per epoch; each distributed rank takes an equal shard.

    Sorting within windows of `bucket_batches` batches keeps padding low without making batch
    order predictable; every rank gets the same number of batches, so DDP never waits forever.
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int, shuffle: bool, bucket_batches: int = 50):
        self.lengths, self.batch_size, self.seed, self.shuffle = lengths, batch_size, seed, shuffle
        self.bucket_batches, self.epoch = bucket_batches, 0

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
        yield from self._batches()

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
    ):
        super().__init__()
        self.bundle, self.tokenizer, self.label_map = bundle, tokenizer, label_map
        self.batch_size, self.max_length, self.seed, self.shuffle = batch_size, max_length, seed, shuffle
        self.splits: dict[str, tuple[list[list[int]], list[int]]] = {}

    def setup(self, stage: str | None = None) -> None:
        for split in ("train", "val"):
            if split not in self.splits:
                texts, labels = read_split(self.bundle, split, self.label_map)
                encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
                self.splits[split] = (encoded, labels)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        encoded, labels = self.splits[split]
        sampler = LengthBucketSampler([len(e) for e in encoded], self.batch_size, self.seed, shuffle)
        collate = PaddingCollator(encoded, labels, self.tokenizer.pad_token_id or 0)
        return DataLoader(range(len(encoded)), batch_sampler=sampler, collate_fn=collate)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=self.shuffle)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)
