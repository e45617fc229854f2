"""The label screening inside training_examples, run by Dagster: the suspects' table, their quarantine under the
dataset's policy, the warn rule, and duplicates that arrived with another label."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl

from assets.datasets.declaration import DatasetDeclaration, Task, declaration_yaml
from assets.readers.mapping import RecordMapping
from assets.storage.home import RefineryHome
from dagster_project.cli.summary import render_summary, version_summary
from dagster_project.jobs import PIPELINE_JOB
from tests.dagster_project.pipeline import Pipeline
from tests.examples.label_noise import generated_tickets

DATA_ASSETS = ["raw_documents", "clean_documents", "tokenized_documents", "training_examples"]
TICKETS = DatasetDeclaration(
    "helpdesk",
    mapping=RecordMapping(text_column="text", label_column="label"),
    tasks=(Task("label", label_issues="quarantine"),),
)


def test_suspects_of_train_and_val_are_quarantined_the_test_split_s_reported_and_a_relabelled_copy_named(
    tmp_path: Path,
) -> None:
    examples, _, flipped = generated_tickets(seed=5)
    drop = tmp_path / "drop"
    drop.mkdir()
    conflicting = {"text": examples["text"][0], "label": "billing" if examples["label"][0] != "billing" else "access"}
    rows = pl.concat([examples.select("text", "label"), pl.DataFrame([conflicting])])
    rows.write_csv(drop / "tickets.csv")
    home = RefineryHome(tmp_path / "home").ensure()
    (home.datasets / "helpdesk.yaml").write_text(declaration_yaml(TICKETS))
    with dg.instance_for_test(temp_dir=str(home.dagster)) as instance:
        pipeline = Pipeline(home, instance, tmp_path / "unused-model")
        pipeline.register(drop, "helpdesk-v1", "helpdesk")
        job = pipeline.defs.resolve_job_def(PIPELINE_JOB)
        selection = [dg.AssetKey(name) for name in DATA_ASSETS]
        result = job.execute_in_process(
            partition_key="helpdesk-v1", instance=instance, asset_selection=selection, raise_on_error=False
        )
        assert result.success
        checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
        assert checks["check_nothing_lost"].passed and not checks["check_few_label_issues"].passed  # 7.5% flipped
        metadata = result.asset_materializations_for_node("training_examples")[0].metadata
        issues = pipeline.table("label_issues", "helpdesk-v1")
        kept = pipeline.table("training_examples", "helpdesk-v1")
        quarantine = pipeline.table("quarantine", "helpdesk-v1")
        summary = version_summary(home, "helpdesk-v1")
    suspects = issues.filter(pl.col("kind") == "suspected_label_error")
    texts_flipped = set(examples.filter(pl.col("doc_id").is_in(list(flipped)))["text"])
    assert len(set(suspects["text"]) & texts_flipped) / suspects.height >= 0.8
    moved = quarantine.filter(pl.col("rule") == "suspected_label_error")
    assert set(moved["doc_id"]) == set(suspects.filter(pl.col("split") != "test")["doc_id"])
    assert not set(moved["doc_id"]) & set(kept["doc_id"])
    reported = suspects.filter(pl.col("split") == "test")
    assert reported.height > 0 and set(reported["action"]) == {"reported"}
    assert set(reported["doc_id"]) <= set(kept["doc_id"])
    (conflict,) = issues.filter(pl.col("kind") == "conflicting_duplicate").iter_rows(named=True)
    assert conflict["given_label"] == conflicting["label"] and conflict["source_row"] == rows.height + 1
    assert conflict["duplicate_label"] == examples["label"][0]
    table = metadata["top_label_issues"]
    assert isinstance(table, dg.TableMetadataValue) and 0 < len(table.records) <= 20
    assert metadata["label_issue_policy"].value == "quarantine"
    assert metadata["label_quarantined"].value == moved.height
    assert summary["label_issues"] == {"suspected_label_error": suspects.height, "conflicting_duplicate": 1}
    shown = render_summary(summary, home)
    assert f"label issues        1 conflicting duplicates, {suspects.height} suspected label errors" in shown
