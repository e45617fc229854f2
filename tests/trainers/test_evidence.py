"""The evidence index a classifier's export builds over its train split: its vectors, its provenance, its search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import write_small_bundle
from trainers.evidence import EVIDENCE_ROWS, EvidenceIndex, build_evidence_index, write_evidence_index
from trainers.kinds import load_classifier
from trainers.params import TrainingParams
from trainers.registry import model_card
from trainers.reporter import Reporter
from trainers.train import train


def bundle_with_provenance(folder: Path) -> Path:
    """The small bundle, its rows given a dataset version, a source file and a row, as the pipeline's carry them."""
    bundle = write_small_bundle(folder)
    for split in ("train", "val", "test"):
        table = pq.read_table(bundle / f"{split}.parquet")
        rows = table.num_rows
        table = table.append_column("dataset_version", pa.array([f"v-{split}"] * rows))
        table = table.append_column("source", pa.array([f"{split}.csv"] * rows))
        table = table.append_column("source_row", pa.array(range(2, rows + 2), pa.int64()))
        pq.write_table(table, bundle / f"{split}.parquet")
    return bundle


def test_a_tfidf_export_cites_the_train_row_a_text_came_from_with_its_source(tmp_path: Path) -> None:
    bundle = bundle_with_provenance(tmp_path / "bundle")
    with Reporter(None) as reporter:
        train(bundle, tmp_path / "model", TrainingParams(model_kind="tfidf"), reporter)
    card = model_card(tmp_path / "model")
    assert card["evidence"]["rows"] == pq.read_metadata(bundle / "train.parquet").num_rows
    assert card["evidence"]["vectors"] == "sparse" and card["evidence"]["build_seconds"] >= 0
    train_rows = pq.read_table(bundle / "train.parquet").to_pylist()
    classifier = load_classifier(tmp_path / "model")
    (cited,) = classifier.nearest_examples([train_rows[4]["text"]], 3)
    assert cited[0]["doc_id"] == train_rows[4]["doc_id"] and cited[0]["distance"] == pytest.approx(0, abs=1e-4)
    assert (
        cited[0]["source"] == "train.csv" and cited[0]["source_row"] == 6 and cited[0]["dataset_version"] == "v-train"
    )
    assert [row["distance"] for row in cited] == sorted(row["distance"] for row in cited) and len(cited) == 3


def test_an_encoder_export_searches_its_own_pooled_vectors(tmp_path: Path, tiny_model: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from trainers.export import export_model

    bundle = bundle_with_provenance(tmp_path / "bundle")
    labels = {"a": 0, "b": 1, "c": 2}
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=3, ignore_mismatched_sizes=True)
    export_model(model, AutoTokenizer.from_pretrained(tiny_model), labels, {}, tmp_path / "model")
    classifier = load_classifier(tmp_path / "model")
    evidence = build_evidence_index(tmp_path / "model", bundle, classifier)
    assert evidence["vectors"] == "float16" and evidence["dimensions"] == model.config.hidden_size
    texts = pq.read_table(bundle / "train.parquet").column("text").to_pylist()
    nearest = classifier.nearest_examples([texts[0], texts[7]], 1)
    assert [rows[0]["text"] for rows in nearest] == [texts[0], texts[7]]
    assert nearest[0][0]["distance"] < 1e-2


def test_search_is_exact_cosine_nearest_first_and_k_is_capped_by_the_rows(tmp_path: Path) -> None:
    rows = pa.table({"doc_id": ["x", "y", "z"], "label": ["a", "b", "a"], "text": ["x", "y", "z"]})
    write_evidence_index(tmp_path, rows, np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    index = EvidenceIndex.load(tmp_path)
    (found,) = index.nearest(np.array([[2.0, 0.1]]), 10)
    assert [row["doc_id"] for row in found] == ["x", "z", "y"] and found[0]["distance"] < found[1]["distance"]
    assert (tmp_path / EVIDENCE_ROWS).is_file() and EvidenceIndex.load(tmp_path / "nowhere") is None
