"""Train and export a TF-IDF linear classifier from a bundle: the cheap model a selection matrix may choose.

It reads the same bundle and writes the same model folder (label map, card, text recipe) as a fine-tune,
so evaluation, the gate, the registry and the service take it through the same `Classifier` contract.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from contracts.model_folder import TFIDF
from recipe.words import analyzed_texts
from trainers.abstain import fit_abstain_threshold
from trainers.bundle import read_bundle_manifest, read_split
from trainers.export import stage_model_folder
from trainers.metrics import classification_metrics
from trainers.params import TrainingParams
from trainers.selection.candidates import CandidateData, TfidfCandidate


def split_data(bundle: Path, split: str, label_map: dict[str, int], language: str) -> CandidateData:
    """One split of a bundle with the lemmas and stems a TF-IDF model reads."""
    texts, labels = read_split(bundle, split, label_map)
    return CandidateData(texts, analyzed_texts(texts, language), np.array(labels, dtype=np.int64))


def train_tfidf(bundle: Path, output: Path, params: TrainingParams, reporter) -> dict[str, object]:
    """Fit on the bundle's train split, measure on val, export to `output`; the metrics reported."""
    manifest = read_bundle_manifest(bundle)
    label_map, classes = manifest.label_map, len(manifest.label_map)
    train = split_data(bundle, "train", label_map, params.analyzer_language)
    val = split_data(bundle, "val", label_map, params.analyzer_language)
    reporter.log(f"training a TF-IDF linear model on {manifest.row_counts} rows")
    model = TfidfCandidate(seed=params.seed)
    started = time.perf_counter()
    model.fit(train, classes)
    seconds = round(time.perf_counter() - started, 2)
    probabilities = torch.from_numpy(model.predict_proba(val)).float()
    targets = torch.from_numpy(val.labels)
    val_metrics = classification_metrics(probabilities.argmax(-1), targets, classes) if len(val.texts) else {}
    abstain = None
    if params.abstain_label:
        abstain_id = label_map[params.abstain_label]
        threshold = fit_abstain_threshold(probabilities, targets, abstain_id, params.abstain_budget)
        abstain = {"label": params.abstain_label, "threshold": threshold, "budget": params.abstain_budget}
    card = {
        "model_kind": TFIDF,
        "model_source": "tfidf",
        "resolved_source": "tfidf",
        "hyperparameters": {**asdict(params), "c": model.c, "max_features": model.max_features},
        "label_map": label_map,
        "dataset_versions": manifest.dataset_versions,
        "rules_hash": manifest.rules_hash,
        "row_counts": manifest.row_counts,
        "lineage": manifest.lineage,
        "validation_metrics": val_metrics,
        "train_seconds": seconds,
        "epochs": 1,
        "exported_epoch": None,
        "abstain": abstain,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with stage_model_folder(output, label_map, card, manifest.text_recipe) as staging:
        model.save(staging)
    result = {
        "model_path": str(output),
        "dataset_versions": manifest.dataset_versions,
        "train_seconds": seconds,
        "precision": "float64-sparse",
        **{f"val_{name}": value for name, value in val_metrics.items()},
        **({"abstain_threshold": abstain["threshold"]} if abstain else {}),
    }
    reporter.report(result)
    return result
