"""Few-shot labels: a prototype head is a prototypical network, and a 5-shot label is added and served."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from service.app import build_app
from service.server import ServiceThread
from tests.conftest import build_tiny_model, write_small_bundle
from tests.servers import call
from trainers.add_labels import add_labels, main, read_examples
from trainers.bundle import read_bundle_manifest, read_split
from trainers.few_shot import head_inputs, meta_train
from trainers.kinds import load_classifier
from trainers.params import TrainingParams
from trainers.registry import promote, read_card
from trainers.train import Reporter, train

NOVEL = [
    f"the aquarium pump {word} bubbles near the coral tank"
    for word in ("hums", "stops", "rattles", "leaks", "clicks", "whines", "drips", "sputters", "buzzes", "gurgles")
]


@pytest.fixture(scope="module")
def prototype_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("few-shot")
    bundle = write_small_bundle(root / "bundle")
    params = TrainingParams(
        model_name_or_path=str(build_tiny_model(root / "tiny", dropout=False)),
        max_epochs=2,
        batch_size=8,
        max_length=48,
        learning_rate=1e-3,
        meta_episodes=6,
    )
    train(bundle, root / "models" / "v1", params, Reporter())
    return root / "models" / "v1", bundle


def test_a_prototype_head_answers_by_the_nearest_train_prototype(prototype_model) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder, bundle = prototype_model
    card = read_card(folder)
    assert card["prototype_head"]["meta_episodes"] == 6 and card["prototype_head"]["temperature"] > 0
    label_map = read_bundle_manifest(bundle).label_map
    texts, labels = read_split(bundle, "train", label_map)
    model, tokenizer = AutoModelForSequenceClassification.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    features = head_inputs(model.eval(), tokenizer, texts, 48)
    prototypes = torch.stack([features[torch.tensor(labels) == i].mean(0) for i in range(len(label_map))])
    queries = head_inputs(model, tokenizer, NOVEL[:3], 48)
    expected = torch.softmax(-(torch.cdist(queries, prototypes) ** 2) / card["prototype_head"]["temperature"], -1)
    assert torch.allclose(load_classifier(folder).probabilities(NOVEL[:3]), expected, atol=1e-4)


def test_a_five_shot_label_is_added_without_training_and_served_over_http(prototype_model, tmp_path: Path) -> None:
    folder, _ = prototype_model
    examples = tmp_path / "aquarium.jsonl"
    examples.write_text("".join(json.dumps({"text": t, "label": "aquarium"}) + "\n" for t in NOVEL[:5]))
    added = add_labels(folder, read_examples(examples), folder.parent / "v2")
    assert added["added"] == {"aquarium": 5} and added["labels"] == len(read_card(folder)["label_map"]) + 1
    card = read_card(folder.parent / "v2")
    assert card["lineage"]["few_shot"]["from"] == "v1" and card["label_map"]["aquarium"] == added["labels"] - 1
    promote(folder.parent, "v2")
    with ServiceThread(build_app(folder.parent, token="")) as service:
        status, body = call(f"{service.url}/predict", {"texts": NOVEL[5:]})
    assert status == 200 and body["model_version"] == "v2"
    assert [p["label"] for p in body["predictions"]].count("aquarium") >= 4


def test_meta_training_lowers_the_episode_loss(tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    bundle = write_small_bundle(tmp_path / "bundle")
    source = build_tiny_model(tmp_path / "tiny", dropout=False)
    model, tokenizer = AutoModelForSequenceClassification.from_pretrained(source), AutoTokenizer.from_pretrained(source)
    texts, labels = read_split(bundle, "train", read_bundle_manifest(bundle).label_map)
    losses = meta_train(model, tokenizer, (texts, labels), episodes=40, ways=3, shots=3, queries=3, learning_rate=1e-3)
    assert sum(losses[-10:]) < sum(losses[:10])


def test_labels_are_added_only_to_a_prototype_head_and_bad_example_lines_are_named(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    train(write_small_bundle(tmp_path / "bundle"), plain, TrainingParams(model_kind="tfidf"), Reporter())
    with pytest.raises(ValueError, match="not trained with a prototype head"):
        add_labels(plain, {"new": ["a text"]}, tmp_path / "out")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine", "label": "a"}\n{"text": "no label"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: expected a JSON object with text and label"):
        read_examples(bad)
    assert main(["--model", str(plain), "--examples", str(bad), "--output", str(tmp_path / "x")]) == 2


def test_new_rows_are_calibrated_to_keep_known_labels_accuracy_on_their_val_split(prototype_model, tmp_path) -> None:
    folder, bundle = prototype_model
    label_map = read_bundle_manifest(bundle).label_map
    texts, ids = read_split(bundle, "val", label_map)
    labels = [next(k for k, v in label_map.items() if v == i) for i in ids]
    # a "new" label whose prototype is a known text the model gets right: uncalibrated, it would take that text
    right = next(
        t for t, p, g in zip(texts, load_classifier(folder).predict(texts), labels, strict=True) if p.label == g
    )
    added = add_labels(folder, {"copycat": [right] * 5}, tmp_path / "v3", (texts, labels))

    def accuracy(model_folder: Path) -> float:
        return sum(
            p.label == gold for p, gold in zip(load_classifier(model_folder).predict(texts), labels, strict=True)
        )

    assert read_card(tmp_path / "v3")["lineage"]["few_shot"]["bias_offset"] > 0
    assert accuracy(tmp_path / "v3") >= accuracy(folder) - 0.005 * len(texts) and added["labels"] == 4
