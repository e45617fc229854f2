"""`refinery generate` answers with a generation dataset's deployed causal LM; each command refuses the other
family's model by name, pointing at the command that serves it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.dagster_project.test_cli import _refinery
from trainers.generative.tiny import build_tiny_causal_lm
from trainers.registry import MODEL_CARD, promote


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with a deployed tiny causal LM (`answers`) and a deployed classifier's card (`tickets`)."""
    home = tmp_path_factory.mktemp("home")
    answers = home / "models" / "answers"
    folder = build_tiny_causal_lm(answers / "v1")
    (folder / MODEL_CARD).write_text(json.dumps({"model_kind": "causal_lm", "base_model": "tiny"}))
    promote(answers, "v1")
    tickets = home / "models" / "tickets" / "v1"
    tickets.mkdir(parents=True)
    (tickets / MODEL_CARD).write_text(json.dumps({"model_kind": "tfidf"}))
    promote(tickets.parent, "v1")
    return home


def test_generate_answers_prompts_from_the_command_line_and_a_file(home: Path, tmp_path: Path) -> None:
    answered = _refinery(home, "generate", "--dataset", "answers", "my vpn drops", "--max-new-tokens", "6", "--json")
    assert answered.returncode == 0, answered.stderr
    row = json.loads(answered.stdout.splitlines()[-1])
    assert row["prompt"] == "my vpn drops" and row["model_version"] == "v1" and 1 <= row["tokens"] <= 6
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "printer jam"}\n{"prompt": "badge broken"}\n')
    output = tmp_path / "answers.jsonl"
    written = _refinery(home, "generate", "--dataset", "answers", "-f", str(prompts), "-o", str(output))
    assert written.returncode == 0, written.stderr
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["prompt"] for r in rows] == ["printer jam", "badge broken"] and all("answer" in r for r in rows)


def test_each_command_refuses_the_other_familys_model_naming_the_right_one(home: Path) -> None:
    predicted = _refinery(home, "predict", "--dataset", "answers", "my vpn drops")
    assert predicted.returncode != 0 and "labels no texts" in predicted.stderr
    assert "refinery generate" in predicted.stderr
    generated = _refinery(home, "generate", "--dataset", "tickets", "my vpn drops")
    assert generated.returncode != 0 and "use refinery predict" in generated.stderr
    nothing = _refinery(home, "generate", "--dataset", "answers")
    assert nothing.returncode != 0 and "nothing to answer" in nothing.stderr


def test_with_one_classifier_and_one_generator_each_command_picks_its_own_without_dataset(home: Path) -> None:
    from assets.storage.home import RefineryHome
    from contracts.model_folder import CLASSIFIER, GENERATOR
    from dagster_project.cli import CliError
    from dagster_project.cli.models import model_root_for

    refinery_home = RefineryHome(home)
    assert model_root_for(refinery_home, None, CLASSIFIER).name == "tickets"
    assert model_root_for(refinery_home, None, GENERATOR).name == "answers"
    with pytest.raises(CliError, match="models of several datasets"):
        model_root_for(refinery_home, None)
    answered = _refinery(home, "generate", "my vpn drops", "--max-new-tokens", "4", "--json")
    assert answered.returncode == 0, answered.stderr
    assert json.loads(answered.stdout.splitlines()[-1])["model_version"] == "v1"
    listed = _refinery(home, "models")
    assert listed.returncode == 0, listed.stderr
    assert "dataset answers" in listed.stdout and "dataset tickets" in listed.stdout
    report = json.loads(_refinery(home, "models", "--json").stdout)
    assert set(report["datasets"]) == {"answers", "tickets"}
