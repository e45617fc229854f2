"""`refinery explain`: the training examples behind a served prediction, found through the prediction log."""

from __future__ import annotations

import argparse
import json

from assets.storage.home import RefineryHome
from dagster_project.cli import CliError


def command_explain(args: argparse.Namespace, home: RefineryHome) -> int:
    from service.evidence import NoEvidenceError, logged_prediction, prediction_evidence
    from trainers.evidence import MAX_K

    if not 1 <= args.k <= MAX_K:
        raise CliError(f"-k must be from 1 to {MAX_K}, got {args.k}")
    prediction = logged_prediction(home.lake, args.prediction_id)
    if prediction is None:
        raise CliError(f"no logged prediction has the id {args.prediction_id!r} in {home.lake}")
    try:
        cited = prediction_evidence(prediction, home.models / prediction["dataset"], args.k)
    except NoEvidenceError as error:
        raise CliError(str(error)) from error
    if args.json:
        print(json.dumps({**prediction, "evidence": cited}, ensure_ascii=False, default=str))
        return 0
    print(f"{prediction['label']}\t{prediction['score']:.4f}\t{prediction['text']}")
    print(f"answered by {prediction['dataset']} model {prediction['model_version']}; nearest training examples:")
    for row in cited:
        where = f"{row.get('source') or '-'}:{row.get('source_row') or '-'}"
        version = row.get("dataset_version") or "-"
        print(f"{row['distance']:.4f}\t{row['label']}\t{version}\t{where}\t{row['doc_id']}\t{row['text']}")
    return 0
