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

        assert mirror_store(store, cache) == ["tickets"]
        assert read_aliases(cache / "tickets") == read_aliases(registry)
        mirrored = cache / "tickets" / version
        assert (mirrored / "model.safetensors").read_bytes() == (registry / version / "model.safetensors").read_bytes()
        assert (mirrored / "tokenizer" / "vocab.txt").read_text() == f"[PAD]\n{version}\n"
    assert mirror_store(store, cache) == []  # nothing moved

    rollback(registry)
    store.publish_aliases("tickets", registry)
    assert mirror_registry(store, "tickets", cache)
    assert read_aliases(cache / "tickets") == {"production": "v1", "previous": "v2"}


def test_the_cache_keeps_its_aliases_when_the_store_names_a_model_it_does_not_hold(s3: str, tmp_path: Path) -> None:
    store, registry, cache = ModelStore("s3://lake/models"), tmp_path / "models" / "tickets", tmp_path / "cache"
    store.publish_model("tickets", export(registry, "v1"))
    promote(registry, "v1")
    store.publish_aliases("tickets", registry)
    mirror_store(store, cache)
    export(registry, "v2")
    promote(registry, "v2")
    store.publish_aliases("tickets", registry)  # the aliases went up, the folder did not

    with pytest.raises(FileNotFoundError, match="tickets/v2: no model folder"):
        mirror_store(store, cache)

    assert read_aliases(cache / "tickets") == {"production": "v1"}
    assert not (cache / "tickets" / "v2").exists()


def test_a_folder_without_a_model_card_is_not_published(s3: str, tmp_path: Path) -> None:
    (tmp_path / "half").mkdir()
    with pytest.raises(FileNotFoundError, match="no exported model"):
        ModelStore("s3://lake/models").publish_model("tickets", tmp_path / "half")
