"""The registry and the embedded default model."""

import json
import shutil
from pathlib import Path

import pytest

from trainers.default_model import (
    PINNED_SHA256,
    ModelSourceError,
    default_model_folder,
    file_sha256,
    resolve_model_source,
    verify_model_folder,
)
from trainers.registry import promote, read_aliases, resolve_alias, update_card


def _model(root: Path, version: str) -> None:
    (root / version).mkdir(parents=True)
    (root / version / "model_card.json").write_text(json.dumps({"version": version}))


def test_promote_moves_production_and_keeps_previous(tmp_path: Path) -> None:
    _model(tmp_path, "v1")
    _model(tmp_path, "v2")
    assert promote(tmp_path, "v1") == {"production": "v1"}
    assert promote(tmp_path, "v2") == {"production": "v2", "previous": "v1"}
    assert promote(tmp_path, "v2") == {"production": "v2", "previous": "v1"}
    assert resolve_alias(tmp_path) == tmp_path / "v2"
    assert not list(tmp_path.glob(".*.tmp"))


def test_promoting_a_missing_model_changes_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no exported model"):
        promote(tmp_path, "v9")
    assert read_aliases(tmp_path) == {}
    with pytest.raises(LookupError, match="no model has the alias 'production'"):
        resolve_alias(tmp_path)


def test_update_card_merges_fields(tmp_path: Path) -> None:
    _model(tmp_path, "v1")
    assert update_card(tmp_path / "v1", metrics={"accuracy": 0.9}) == {"version": "v1", "metrics": {"accuracy": 0.9}}


def test_default_model_is_found_without_import_and_its_weights_verified() -> None:
    folder = default_model_folder()
    assert file_sha256(folder / "model.safetensors") == PINNED_SHA256
    assert resolve_model_source("default") == str(folder)


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    copy = Path(shutil.copytree(default_model_folder(), tmp_path / "model"))
    with (copy / "model.safetensors").open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00\x01\x02")
    with pytest.raises(ModelSourceError, match="does not match the pinned"):
        verify_model_folder(copy)


def test_a_folder_without_config_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match=r"no config\.json"):
        resolve_model_source(str(tmp_path))


def test_rollback_swaps_production_and_previous_and_needs_a_previous(tmp_path: Path) -> None:
    from trainers.registry import rollback

    for version in ("a", "b"):
        (tmp_path / version).mkdir()
        (tmp_path / version / "model_card.json").write_text("{}")
    promote(tmp_path, "a")
    with pytest.raises(LookupError, match="no previous model"):
        rollback(tmp_path)
    promote(tmp_path, "b")
    assert rollback(tmp_path) == {"production": "a", "previous": "b"}
    assert read_aliases(tmp_path) == {"production": "a", "previous": "b"}
