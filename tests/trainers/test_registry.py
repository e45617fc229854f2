"""The registry and the embedded default model."""

import itertools
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


def _slow_promote(root: Path, version: str) -> None:
    """promote, with a pause between reading the aliases and writing them (the window a race needs)."""
    import time

    from trainers import registry

    write = registry.write_json_atomically

    def slow_write(path: Path, value: object) -> None:
        time.sleep(0.5)
        write(path, value)

    registry.write_json_atomically = slow_write
    registry.promote(root, version)


def test_a_rollback_racing_a_deployment_is_not_lost_and_both_moves_are_in_the_history(tmp_path: Path) -> None:
    import multiprocessing
    import time

    from trainers.registry import alias_history, rollback

    for version in ("a", "b", "c"):
        _model(tmp_path, version)
    promote(tmp_path, "a")
    promote(tmp_path, "b")
    deploying = multiprocessing.get_context("fork").Process(target=_slow_promote, args=(tmp_path, "c"))
    deploying.start()
    time.sleep(0.2)  # the deployment holds the aliases now
    rollback(tmp_path)  # waits for the deployment, then rolls it back
    deploying.join(timeout=10)
    assert deploying.exitcode == 0
    history = alias_history(tmp_path)
    assert [entry["reason"] for entry in history] == ["promote a", "promote b", "promote c", "rollback to b"]
    for earlier, later in itertools.pairwise(history):
        assert later["before"] == earlier["after"]  # a chain: no move was made from a stale read
    assert read_aliases(tmp_path) == history[-1]["after"] == {"production": "b", "previous": "c"}


def test_a_promotion_that_expects_another_production_changes_nothing(tmp_path: Path) -> None:
    from trainers.registry import AliasConflictError, rollback

    for version in ("a", "b", "c"):
        _model(tmp_path, version)
    promote(tmp_path, "a")
    promote(tmp_path, "b")
    rollback(tmp_path)  # production is a again, while c was evaluated against b
    with pytest.raises(AliasConflictError, match="production is 'a', not 'b'"):
        promote(tmp_path, "c", expected_production="b")
    assert read_aliases(tmp_path) == {"production": "a", "previous": "b"}
    assert promote(tmp_path, "c", expected_production="a") == {"production": "c", "previous": "a"}


def test_model_versions_of_a_dataset_version_are_found_newest_last(tmp_path: Path) -> None:
    from trainers.registry import ModelRegistry, models_of, new_model_version

    first, second = new_model_version("v1"), new_model_version("v1")
    assert first != second and first.startswith("v1-")
    for version, created in ((second, "2026-11-25T10:00:01Z"), (first, "2026-11-25T10:00:00Z")):
        (tmp_path / "m" / version).mkdir(parents=True)
        card = {"created_at": created, "lineage": {"dataset_version": "v1", "model_version": version}}
        (tmp_path / "m" / version / "model_card.json").write_text(json.dumps(card))
    assert models_of(tmp_path / "m", "v1") == [tmp_path / "m" / first, tmp_path / "m" / second]
    registry = ModelRegistry(str(tmp_path), "m")
    assert registry.latest_model_of("v1") == tmp_path / "m" / second
    assert registry.dataset_version_of(first) == "v1"
    with pytest.raises(LookupError, match="no model trained for dataset version 'v2'"):
        registry.latest_model_of("v2")
