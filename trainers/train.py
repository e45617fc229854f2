"""Training entry point: `python -m trainers.train --bundle DIR --output DIR [--params JSON]`.

Launched by the `fine_tuned_model` asset through dagster-pipes; the same command runs by hand,
under `torchrun`, or in a pod. Only rank 0 talks to Dagster. The bundle and the params' `model_kind`
choose the kind that trains (trainers.kinds); each kind reads its own params.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from contracts.model_folder import CLASSIFIER
from trainers.bundle import read_bundle_manifest
from trainers.console import quiet_libraries
from trainers.evidence import build_evidence_index, card_with_evidence
from trainers.kinds import training_kind
from trainers.params import TrainingParams
from trainers.registry import MODEL_CARD, model_card
from trainers.reporter import Reporter
from trainers.tracking import tracked_run

__all__ = ["Reporter", "main", "train"]


def train(
    bundle: Path, output: Path, params: TrainingParams, reporter: Reporter, checkpoints: Path | None = None
) -> dict[str, object]:
    """Train the classifier kind the params ask for on a bundle, export it to `output` (rank 0), and return what
    was reported."""
    kind = training_kind(read_bundle_manifest(bundle), params.model_kind)
    result = kind.train(bundle, output, params, reporter, checkpoints)
    export_evidence(kind, bundle, output, reporter)
    return result


def export_evidence(kind, bundle: Path, output: Path, reporter: Reporter) -> None:
    """A classifier's evidence index over its train split, built by the rank that exported the folder."""
    if kind.family != CLASSIFIER or os.environ.get("RANK", "0") != "0" or not (output / MODEL_CARD).is_file():
        return
    evidence = build_evidence_index(output, bundle, kind.load(output, model_card(output)))
    card_with_evidence(output / MODEL_CARD, evidence)
    reporter.log(f"evidence index: {evidence['rows']} train rows in {evidence['build_seconds']} s")


def main(argv: list[str] | None = None) -> int:
    quiet_libraries()
    parser = argparse.ArgumentParser(prog="python -m trainers.train", description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True, help="training bundle folder (Parquet + manifest), or its URI")
    parser.add_argument("--output", required=True, help="model folder to export to, or its URI (s3://...)")
    parser.add_argument("--params", default="{}", help="TrainingParams as JSON")
    parser.add_argument("--checkpoints", type=Path, help="resumable checkpoints (default: .<output>.checkpoints)")
    args = parser.parse_args(argv)
    location = args.output if "://" in args.output else None
    with Reporter(location) as reporter, staged(args.bundle, args.output) as (bundle, output):
        kind = training_kind(read_bundle_manifest(bundle), json.loads(args.params or "{}").get("model_kind"))
        params = kind.read_params(args.params)
        with tracked_run(output.name, {"model_kind": kind.name, **asdict(params)}) as tracking:
            kind.train(bundle, output, params, reporter, args.checkpoints)
            export_evidence(kind, bundle, output, reporter)
            if tracking is not None:
                tracking.finish(output)
    return 0


@contextmanager
def staged(bundle: str, output: str) -> Iterator[tuple[Path, Path]]:
    """Local folders for a bundle and an output that may live on object storage (a trainer that shares no disk
    with the pipeline): the bundle is downloaded first, the exported model uploaded after (by the rank that
    exported it)."""
    if "://" not in bundle and "://" not in output:
        yield Path(bundle), Path(output)
        return
    from trainers.model_store import download_folder, upload_folder

    with tempfile.TemporaryDirectory(prefix="refinery-trainer-") as scratch:
        local_bundle = download_folder(bundle, Path(scratch) / "bundle") if "://" in bundle else Path(bundle)
        local_output = Path(scratch) / output.rstrip("/").rsplit("/", 1)[-1] if "://" in output else Path(output)
        yield local_bundle, local_output
        if "://" in output and (local_output / MODEL_CARD).is_file():
            upload_folder(local_output, output)


if __name__ == "__main__":
    sys.exit(main())
