"""A person's review of suspected label errors: exported as a CSV, decided on, imported as a new version that goes
through the same rules and trains in place of the version it corrects."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from assets.datasets.declaration import DatasetDeclaration, Task, declaration_yaml
from assets.readers.mapping import RecordMapping
from assets.resources import LandingResource
from assets.storage.home import RefineryHome
from dagster_project.cli import main
from dagster_project.cli.common import open_instance
from dagster_project.jobs import PIPELINE_JOB
from tests.dagster_project.pipeline import Pipeline
from tests.examples.label_noise import generated_tickets

DATA_ASSETS = [dg.AssetKey(name) for name in ("raw_documents", "clean_documents", "tokenized_documents")]
TICKETS = DatasetDeclaration(
    "helpdesk", mapping=RecordMapping(text_column="text", label_column="label"), tasks=(Task("label"),)
)


def _materialize(pipeline: Pipeline, version: str) -> dg.ExecuteInProcessResult:
    job = pipeline.defs.resolve_job_def(PIPELINE_JOB)
    selection = [*DATA_ASSETS, dg.AssetKey("training_examples")]
    return job.execute_in_process(partition_key=version, instance=pipeline.instance, asset_selection=selection)


def test_a_review_relabels_and_drops_suspects_into_a_version_that_supersedes_the_original(
    home: RefineryHome, tmp_path: Path, capsys
) -> None:
    examples, meant, _ = generated_tickets(seed=7)
    drop = tmp_path / "drop"
    drop.mkdir()
    examples.select("text", "label").write_csv(drop / "tickets.csv")
    (home.datasets / "helpdesk.yaml").write_text(declaration_yaml(TICKETS))
    pipeline = Pipeline(home, open_instance(home), tmp_path / "unused-model")
    pipeline.register(drop, "helpdesk-v1", "helpdesk")
    assert _materialize(pipeline, "helpdesk-v1").success
    sheet = tmp_path / "suspects.csv"
    assert main(["review", "export", "-o", str(sheet)]) == 0
    decided = pl.read_csv(sheet, infer_schema=False)
    assert set(decided["decision"].fill_null("")) == {""} and decided["label"].equals(decided["suggested_label"])
    decisions = ["drop"] + ["relabel"] * (decided.height - 2) + [""]  # the last stays as it was labelled
    decided.with_columns(pl.Series("decision", decisions)).write_csv(sheet)
    capsys.readouterr()
    assert main(["review", "import", str(sheet), "--dataset-version", "helpdesk-v1-reviewed"]) == 0
    assert "it supersedes helpdesk-v1" in capsys.readouterr().out
    manifest = yaml.safe_load((home.landing / "helpdesk-v1-reviewed" / "_version.yaml").read_text())
    assert manifest["supersedes"] == ["helpdesk-v1"] and manifest["dataset"] == "helpdesk"
    assert manifest["review"]["decisions"] == {"keep": 1, "relabel": decided.height - 2, "drop": 1}
    assert len(manifest["review"]["changes"]) == decided.height - 1
    assert _materialize(pipeline, "helpdesk-v1-reviewed").success
    reviewed = pipeline.table("training_examples", "helpdesk-v1-reviewed")
    quarantine = pipeline.table("quarantine", "helpdesk-v1-reviewed")
    assert quarantine.filter(pl.col("value") == "duplicates an earlier version").is_empty()
    assert quarantine.filter(pl.col("rule").is_in(["duplicate", "near_duplicate"])).height <= 1
    dropped_text = decided["text"][0]
    assert dropped_text not in reviewed["text"].to_list()
    relabelled = dict(zip(decided["text"][1:-1], decided["label"][1:-1], strict=True))
    now = dict(zip(reviewed["text"], reviewed["label"], strict=True))
    assert set(relabelled) <= set(now) and all(now[text] == label for text, label in relabelled.items())
    truth = dict(zip(examples["text"], meant, strict=True))
    wrong_before = sum(truth[t] != label for t, label in zip(examples["text"], examples["label"], strict=True))
    wrong_after = sum(truth[t] != label for t, label in now.items())
    assert wrong_after < wrong_before / 2
    landing = LandingResource(root=str(home.landing))
    assert landing.of_same_dataset(["helpdesk-v1", "helpdesk-v1-reviewed"], "helpdesk-v1-reviewed") == [
        "helpdesk-v1-reviewed"
    ]
    assert landing.of_same_dataset(["helpdesk-v1", "helpdesk-v1-reviewed"], "helpdesk-v1") == [
        "helpdesk-v1",
        "helpdesk-v1-reviewed",
    ]


def test_a_review_file_with_an_unknown_decision_or_label_is_refused_by_row_and_rule(tmp_path: Path) -> None:
    from assets.examples.review import ReviewError, check_relabels, read_decisions

    sheet = tmp_path / "s.csv"
    rows = {"dataset_version": ["v1"] * 2, "source": ["t.csv"] * 2, "source_row": [2, 3], "decision": ["keep", "maybe"]}
    rows["label"] = ["x", "y"]
    pl.DataFrame(rows).write_csv(sheet)
    with pytest.raises(ReviewError, match=r"s\.csv: row 3: decision 'maybe' is not one of .*\(rule: decision\)"):
        read_decisions(sheet)
    relabel = {"dataset_version": ["v1"], "source": ["t.csv"], "source_row": [2], "decision": ["Relabel"]}
    pl.DataFrame({**relabel, "label": ["nope"]}).write_csv(sheet)
    _, decisions = read_decisions(sheet)
    with pytest.raises(ReviewError, match=r"row 2: relabel to 'nope', which is not .*\(rule: known_label\)"):
        check_relabels(sheet, decisions, {"x", "y"})


def test_a_record_decided_twice_is_refused_by_its_file_and_row(tmp_path: Path) -> None:
    from assets.examples.review import ReviewError, read_decisions

    sheet = tmp_path / "s.csv"
    rows = {"dataset_version": ["v1"] * 2, "source": ["t.csv"] * 2, "source_row": [5, 5], "decision": ["drop", ""]}
    pl.DataFrame({**rows, "label": ["x", "x"]}).write_csv(sheet)
    with pytest.raises(ReviewError, match=r"row 2: t\.csv row 5 is decided twice \(rule: one_decision\)"):
        read_decisions(sheet)


def test_a_text_a_spreadsheet_would_run_is_quoted_in_the_sheet() -> None:
    from assets.examples.label_issues import LABEL_ISSUE_SCHEMA
    from assets.examples.review import review_sheet

    issues = pl.DataFrame({"text": ["=HYPERLINK(1)", "fine"]}).with_columns(
        pl.lit(None, dtype=dtype).alias(name) for name, dtype in LABEL_ISSUE_SCHEMA.items() if name != "text"
    )
    assert review_sheet(issues, "v1")["text"].to_list() == ["'=HYPERLINK(1)", "fine"]
