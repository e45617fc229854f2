"""Models published to an object store (moto's S3 on 127.0.0.1) and mirrored into a service's local cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainers.model_store import ModelStore, mirror_registry, mirror_store
from trainers.registry import MODEL_CARD, promote, read_aliases, rollback


def export(model_root: Path, version: str) -> Path:
    """A model folder as the trainer leaves it, with a nested file."""
    folder = model_root / version
    (folder / "tokenizer").mkdir(parents=True)
    (folder / MODEL_CARD).write_text(json.dumps({"version": version}))
    (folder / "model.safetensors").write_bytes(version.encode() * 1000)
    (folder / "tokenizer" / "vocab.txt").write_text(f"[PAD]\n{version}\n")
    return folder


def test_a_published_model_is_mirrored_into_the_cache_and_follows_promotion_and_rollback(
    s3: str, tmp_path: Path
) -> None:
    store, registry, cache = ModelStore("s3://lake/models"), tmp_path / "models" / "tickets", tmp_path / "cache"
    for version in ("v1", "v2"):
        store.publish_model("tickets", export(registry, version))
        promote(registry, version)
        store.publish_aliases("tickets", registry)

        assert mirror_store(store, cache) == (["tickets"], {})
        assert read_aliases(cache / "tickets") == read_aliases(registry)
        mirrored = cache / "tickets" / version
        assert (mirrored / "model.safetensors").read_bytes() == (registry / version / "model.safetensors").read_bytes()
        assert (mirrored / "tokenizer" / "vocab.txt").read_text() == f"[PAD]\n{version}\n"
    assert mirror_store(store, cache) == ([], {})  # nothing moved

    rollback(registry)
    store.publish_aliases("tickets", registry)
    assert mirror_registry(store, "tickets", cache)
    assert read_aliases(cache / "tickets") == {"production": "v1", "previous": "v2"}


def test_a_production_model_missing_from_the_store_leaves_the_cache_serving_the_old_one(
    s3: str, tmp_path: Path
) -> None:
    store, registry, cache = ModelStore("s3://lake/models"), tmp_path / "models" / "tickets", tmp_path / "cache"
    store.publish_model("tickets", export(registry, "v1"))
    promote(registry, "v1")
    store.publish_aliases("tickets", registry)
    mirror_store(store, cache)
    store._write(store._path("tickets", "aliases.json"), b'{"production": "v2", "previous": "v1"}')  # no v2 folder

    moved, failed = mirror_store(store, cache)

    assert moved == [] and "tickets/v2: no model folder" in failed["tickets"]
    assert read_aliases(cache / "tickets") == {"production": "v1"}
    assert not (cache / "tickets" / "v2").exists()


def test_aliases_name_models_the_store_lacks_are_uploaded_with_them(s3: str, tmp_path: Path) -> None:
    store, registry, cache = ModelStore("s3://lake/models"), tmp_path / "models" / "tickets", tmp_path / "cache"
    for version in ("v1", "v2"):  # deployed before the store was configured
        export(registry, version)
        promote(registry, version)

    store.publish_aliases("tickets", registry)

    assert store.holds_model("tickets", "v1") and store.holds_model("tickets", "v2")
    assert mirror_store(store, cache) == (["tickets"], {})
    assert read_aliases(cache / "tickets") == {"production": "v2", "previous": "v1"}


@pytest.mark.parametrize("hostile", ["../../outside", "/tmp/victim", "v1/../../x", ""])
def test_a_version_name_from_the_store_that_is_not_a_plain_name_is_refused(
    s3: str, tmp_path: Path, hostile: str
) -> None:
    store, victim = ModelStore("s3://lake/models"), tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine")
    store._write(store._path("tickets", "aliases.json"), json.dumps({"production": hostile}).encode())

    moved, failed = mirror_store(store, tmp_path / "cache")

    assert moved == [] and "is not a registry or version name" in failed["tickets"]
    assert (victim / "keep.txt").read_text() == "mine"


def test_a_folder_without_a_model_card_is_not_published(s3: str, tmp_path: Path) -> None:
    (tmp_path / "half").mkdir()
    with pytest.raises(FileNotFoundError, match="no exported model"):
        ModelStore("s3://lake/models").publish_model("tickets", tmp_path / "half")
