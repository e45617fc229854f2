"""The training bundle: Parquet shards per split plus a JSON manifest; all a trainer reads."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

BUNDLE_MANIFEST_FILE = "manifest.json"
SPLITS = ("train", "val", "test")
COLUMNS = ("doc_id", "text", "label")
CLASSIFICATION = "classification"  # a bundle of texts and labels
GENERATION = "generation"  # a bundle of prompts (text) and responses for a causal LM
PAIRS = "preference"  # a bundle of prompts (text) with a chosen and a rejected answer each
DOCUMENTS = "pretraining"  # a bundle of documents (text) a causal LM continues its pre-training on
RESPONSE = "response"
CONTEXT = "context"  # a chat example's earlier turns as JSON (null: a single prompt)
CHOSEN, REJECTED = "chosen", "rejected"
PROVENANCE_COLUMNS = ("dataset_version", "source", "source_row")  # kept where the examples carry them: evidence
EXTRA_COLUMNS = {  # beside doc_id, text, label
    GENERATION: (RESPONSE, CONTEXT),
    PAIRS: (CHOSEN, REJECTED, CONTEXT),
    DOCUMENTS: (),
}


@dataclass
class BundleManifest:
    """What a bundle holds and where it came from."""

    label_map: dict[str, int]
    dataset_versions: list[str]
    rules_hash: str
    row_counts: dict[str, int]
    lineage: dict[str, object] = field(default_factory=dict)
    text_recipe: dict[str, object] | None = None  # how the texts were prepared (recipe.TextRecipe.to_dict)
    tasks: dict[str, dict[str, int]] = field(
        default_factory=dict
    )  # multi-task: every task, each a `label:<task>` column
    kind: str = CLASSIFICATION  # generation: `response` and `context` beside the prompt; preference: pairs

    @property
    def columns(self) -> list[str]:
        """The columns every split holds."""
        return [*COLUMNS, *EXTRA_COLUMNS.get(self.kind, ()), *map(task_column, self.tasks)]


def write_bundle(folder: Path, splits: dict[str, pa.Table], manifest: BundleManifest) -> Path:
    """Write one Parquet file per split and the manifest; the manifest is written last."""
    folder.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        table = splits[split]
        missing = [c for c in manifest.columns if c not in table.column_names]
        if missing:
            raise ValueError(f"split {split!r} lacks columns {missing}")
        provenance = [c for c in PROVENANCE_COLUMNS if c in table.column_names and manifest.kind == CLASSIFICATION]
        pq.write_table(table.select([*manifest.columns, *provenance]), folder / f"{split}.parquet")
    temporary = folder / f".{BUNDLE_MANIFEST_FILE}.tmp"
    temporary.write_text(json.dumps(asdict(manifest), indent=2, sort_keys=True))
    os.replace(temporary, folder / BUNDLE_MANIFEST_FILE)
    return folder


def task_column(task: str) -> str:
    """The bundle column holding one extra task's labels (null where a row has none)."""
    return f"label:{task}"


def read_task_split(folder: Path, split: str, tasks: dict[str, dict[str, int]]) -> tuple[list[str], list[list[int]]]:
    """Texts and, per row, one label id per task (-100 where the row has no label for that task)."""
    table = pq.read_table(folder / f"{split}.parquet", columns=["text", *map(task_column, tasks)])
    columns = [table.column(task_column(task)).to_pylist() for task in tasks]
    maps = list(tasks.values())
    labels = [
        [-100 if value is None else maps[t][value] for t, value in enumerate(row)] for row in zip(*columns, strict=True)
    ]
    return table.column("text").to_pylist(), labels if columns else [[] for _ in range(table.num_rows)]


def read_bundle_manifest(folder: Path) -> BundleManifest:
    """Read a bundle's manifest."""
    path = folder / BUNDLE_MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no bundle manifest")
    return BundleManifest(**json.loads(path.read_text()))


def read_split(folder: Path, split: str, label_map: dict[str, int]) -> tuple[list[str], list[int]]:
    """Texts and label ids of one split."""
    table = pq.read_table(folder / f"{split}.parquet", columns=["text", "label"])
    texts = table.column("text").to_pylist()
    labels = [label_map[label] for label in table.column("label").to_pylist()]
    return texts, labels
