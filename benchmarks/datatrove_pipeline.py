"""The preprocessing benchmark's strong anchor: datatrove doing Gopher quality filtering and MinHash near-dedup.

What a data engineer would reach for instead of Refinery's cleaning: the documents as JSONL shards, Gopher
quality (Refinery's default thresholds), then datatrove's four MinHash stages (signatures, buckets,
clusters, filter) with Refinery's shingles and bands, all on the local executor with `workers` processes.
Its language filter needs a fastText model downloaded from the hub, unreachable offline, so it is left out:
datatrove does less work than Refinery here, never more.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
from datatrove.pipeline.dedup.minhash import MinhashConfig
from datatrove.pipeline.filters import GopherQualityFilter
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter


def write_shards(texts: list[str], folder: Path, shards: int) -> Path:
    """The documents as `shards` JSONL files, one per worker."""
    folder.mkdir(parents=True, exist_ok=True)
    for shard in range(shards):
        with (folder / f"{shard:03d}.jsonl").open("w") as handle:
            for i in range(shard, len(texts), shards):
                handle.write(json.dumps({"id": str(i), "text": texts[i]}) + "\n")
    return folder


def gopher_filter(quality: dict) -> GopherQualityFilter:
    """Gopher quality with Refinery's default thresholds (no stop-word rule: Refinery has none)."""
    return GopherQualityFilter(
        min_doc_words=quality["min_words"],
        max_doc_words=quality["max_words"],
        min_avg_word_length=quality["min_mean_word_length"],
        max_avg_word_length=quality["max_mean_word_length"],
        max_symbol_word_ratio=quality["max_symbol_ratio"],
        max_non_alpha_words_ratio=quality["min_alpha_word_fraction"],  # datatrove's name; it is a minimum
        min_stop_words=None,
    )


def run_datatrove(
    shards: Path, work: Path, quality: dict, workers: int, shingle_size: int, bands: int, rows: int
) -> int:
    """Filter and near-dedup the shards; the number of documents kept."""
    config = MinhashConfig(n_grams=shingle_size, num_buckets=bands, hashes_per_bucket=rows)
    tasks = len(list(shards.glob("*.jsonl")))
    stages = [
        (
            [
                JsonlReader(str(shards)),
                gopher_filter(quality),
                JsonlWriter(str(work / "kept")),
                MinhashDedupSignature(output_folder=str(work / "signatures"), config=config),
            ],
            tasks,
        ),
        (
            [
                MinhashDedupBuckets(
                    input_folder=str(work / "signatures"), output_folder=str(work / "buckets"), config=config
                )
            ],
            bands,
        ),
        (
            [
                MinhashDedupCluster(
                    input_folder=str(work / "buckets"), output_folder=str(work / "remove"), config=config
                )
            ],
            1,
        ),
        (
            [
                JsonlReader(str(work / "kept")),
                MinhashDedupFilter(input_folder=str(work / "remove")),
                JsonlWriter(str(work / "deduped")),
            ],
            tasks,
        ),
    ]
    for number, (pipeline, stage_tasks) in enumerate(stages):
        executor = LocalPipelineExecutor(
            pipeline=pipeline,
            tasks=stage_tasks,
            workers=min(workers, stage_tasks),
            logging_dir=str(work / f"logs{number}"),
            start_method="fork",
        )
        executor.run()
    kept = 0
    for path in sorted((work / "deduped").glob("*.jsonl.gz")):
        with gzip.open(path, "rt") as handle:
            kept += sum(1 for _ in handle)
    return kept
