"""Every setting is listed where users look: docs/settings.md is what the code generates, each setting has help, and
the `training:` block `refinery init` writes holds the defaults in force, ready to uncomment."""

from __future__ import annotations

from pathlib import Path

import pytest

from assets.datasets.declaration import DatasetDeclaration, Task, declaration_yaml, load_dataset
from assets.datasets.training_settings import TRAINING_PARAMS, commented_training, params_of_kind
from assets.storage.home import RefineryHome
from dagster_project.cli import main
from dagster_project.definitions import defs
from dagster_project.settings_reference import REFERENCE_PATH, config_rows, settings_reference


def uncommented(text: str) -> str:
    """A declaration with its commented `training:` block switched on, line by line as a user would."""
    lines = []
    for line in text.splitlines():
        if line == "# training:":
            line = "training:"
        elif line.startswith("#   "):
            line = line[2:]
        lines.append(line)
    return "\n".join(lines) + "\n"


def test_the_settings_reference_is_what_the_code_generates() -> None:
    generated = settings_reference(defs)
    assert REFERENCE_PATH.read_text() == generated, "run: python -m dagster_project.settings_reference"
    assert "| `max_epochs` | `6` |" in generated and "### `fine_tuned_model`" in generated


def test_every_run_setting_of_every_asset_has_help() -> None:
    graph = defs.resolve_asset_graph()
    missing = [
        f"{key.to_user_string()}.{name}"
        for key in graph.get_all_asset_keys()
        for name, _, help in config_rows(graph.get(key).assets_def)
        if not help
    ]
    assert not missing


def test_an_unknown_task_kind_has_no_training_settings() -> None:
    with pytest.raises(ValueError, match="known: classification"):
        params_of_kind("regression")


@pytest.mark.parametrize("kind", [kind for kind in TRAINING_PARAMS if kind != "classification"])
def test_uncommenting_every_causal_lm_setting_gives_the_defaults_in_force(kind: str, tmp_path: Path) -> None:
    declared = {"model_name_or_path": "/models/base"}
    declaration = DatasetDeclaration("answers", tasks=(Task("answer", kind=kind),), training=declared)
    path = tmp_path / "answers.yaml"
    path.write_text(declaration_yaml(declaration) + commented_training(kind, declared))
    assert load_dataset(path).training == declared  # commented out, nothing changes
    path.write_text(uncommented(path.read_text()))
    training = load_dataset(path).training
    assert params_of_kind(kind)(**training) == params_of_kind(kind)(**declared)
    assert len(training) > 20


def test_init_writes_the_classifier_defaults_as_a_commented_training_block(home: RefineryHome, tmp_path: Path) -> None:
    drop = tmp_path / "tickets.csv"
    rows = [f"printer {i} jams again,hardware\n" if i % 2 else f"vpn {i} drops again,network\n" for i in range(40)]
    drop.write_text("text,label\n" + "".join(rows))
    assert main(["init", str(drop)]) == 0
    path = home.datasets / "tickets.yaml"
    written = path.read_text()
    assert "#   max_epochs: 6" in written and "# training:" in written
    assert load_dataset(path).training == {}
    path.write_text(uncommented(written))
    params = params_of_kind("classification")
    assert params(**load_dataset(path).training) == params()
