"""The whole asset graph for real dataset versions: a real lake, a real instance, a tiny model."""

import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from dagster_project.jobs import PIPELINE_JOB
from dagster_project.versions import register_drop
from tests.dagster_project.pipeline import ASSET_KEYS, Pipeline
from trainers.evidence import EVIDENCE_ROWS
from trainers.registry import models_of, read_aliases, read_card, resolve_alias

pytestmark = pytest.mark.slow


def test_every_asset_materializes_and_every_check_passes(pipeline: Pipeline) -> None:
    result = pipeline.first_result
    assert result.success
    materialized = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert materialized == ASSET_KEYS
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {
        "check_max_rejected_rate": True,
        "check_min_rows": True,
        "check_min_examples_per_label": True,
        "check_max_imbalance_ratio": True,
        "check_no_missing_labels": True,
        "check_few_label_issues": True,
        "check_no_repeated_texts": True,
        "check_text_length_distribution": True,
        "check_label_drift": True,
        "check_length_drift": True,
        "check_no_split_leakage": True,
        "check_nothing_lost": True,
        "check_evaluation_gate": True,
        # rules of generation datasets: declared for the code location, passing as "not applicable" here
        "check_no_missing_responses": True,
        "check_no_repeated_examples": True,
        "check_response_length_distribution": True,
        # and of preference datasets (pretraining datasets' rules share the classifier's names)
        "check_no_missing_chosen": True,
        "check_no_missing_rejected": True,
        "check_no_repeated_pairs": True,
    }
    rule_book = result.get_asset_check_evaluations()
    for name in ("check_no_missing_responses", "check_no_missing_chosen", "check_no_repeated_pairs"):
        not_applying = [e for e in rule_book if e.check_name == name]
        assert not_applying[0].metadata["applies"].value is False, name


def test_records_read_equal_examples_plus_quarantine(pipeline: Pipeline) -> None:
    files = [
        json.loads(line)
        for line in (pipeline.home.landing / "v1" / "tickets_portal.ndjson").read_text().splitlines()
        if line.startswith('{"ticket_id": "T1')
    ]
    csv_lines = (pipeline.home.landing / "v1" / "tickets.csv").read_text().count("\n") - 1
    records_in_files = csv_lines + len(files) + 2  # the two malformed NDJSON lines are records too
    examples = pipeline.table("training_examples", "v1")
    quarantine = pipeline.table("quarantine", "v1")
    assert examples.height + quarantine.height == records_in_files
    assert set(quarantine["stage"]) == {"ingest", "clean"}
    duplicates = quarantine.filter(pl.col("rule") == "duplicate")
    assert duplicates.height > 0 and duplicates["duplicate_of"].is_in(examples["doc_id"].implode()).all()
    assert examples["doc_id"].is_unique().all()
    assert set(examples["split"]) == {"train", "val", "test"}
    masked = pipeline.table("clean_documents", "v1")["text"]
    assert masked.str.contains("<EMAIL>").any() and not masked.str.contains(r"@example\.com").any()


def test_model_card_names_the_exact_data_it_saw(pipeline: Pipeline) -> None:
    folder = pipeline.model_of("v1")
    assert (folder / "model.safetensors").is_file() and (folder / "label_map.json").is_file()
    assert (folder / "text_recipe.json").is_file()
    card = read_card(folder)
    assert card["dataset_versions"] == ["v1"]
    assert card["lineage"]["dataset_version"] == "v1" and card["lineage"]["model_version"] == folder.name
    assert card["rules_hash"] and card["lineage"]["training_examples_delta_version"] >= 0
    assert card["lineage"]["text_recipe_hash"] and card["lineage"]["dagster_run_id"]
    assert card["hyperparameters"]["max_epochs"] == 1
    assert set(card["test_evaluation"]["metrics"]) >= {"accuracy", "macro_precision", "macro_recall", "macro_f1"}
    assert card["evaluation_gate"]["passed"] and "deployed_at" in card
    assert pipeline.first_aliases == {"production": folder.name}


def test_the_fine_tune_is_an_mlflow_run_with_its_settings_steps_card_and_test_metrics(pipeline: Pipeline) -> None:
    from mlflow import MlflowClient

    from trainers.tracking import local_store

    folder = pipeline.model_of("v1")
    card = read_card(folder)
    client = MlflowClient(tracking_uri=local_store(pipeline.home.root))
    run = client.get_run(card["tracking"]["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == folder.name
    assert client.get_experiment(run.info.experiment_id).name == folder.parent.name
    assert run.data.params["max_epochs"] == "1" and run.data.params["model_kind"] == card["model_kind"]
    assert client.get_metric_history(run.info.run_id, "train_loss") and "val_loss" in run.data.metrics
    test_metrics = card["test_evaluation"]["metrics"]
    assert run.data.metrics["test_accuracy"] == pytest.approx(test_metrics["accuracy"])
    assert {"model_card.json", "metrics.csv"} <= {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
    evaluated = [
        m for m in pipeline.first_result.get_asset_materialization_events() if m.asset_key.path == ["model_evaluation"]
    ]
    shown = evaluated[0].materialization.metadata["mlflow_run"].value
    assert run.info.run_id in shown and str(pipeline.home.root) not in json.dumps(card["tracking"])


def test_model_of_a_later_version_trains_on_all_versions_up_to_it(pipeline: Pipeline) -> None:
    models = pipeline.models
    registered = pipeline.instance.get_dynamic_partitions("dataset_versions")
    before = read_aliases(models)["production"]
    pipeline.register_demo("v2", rows=300, seed=2)
    assert pipeline.run("v2").success
    card = read_card(pipeline.model_of("v2"))
    with_examples = set(pl.read_delta(str(pipeline.home.lake / "training_examples"))["dataset_version"])
    assert card["dataset_versions"] == [v for v in [*registered, "v2"] if v in with_examples]
    assert card["dataset_versions"][0] == "v1" and card["dataset_versions"][-1] == "v2"
    assert read_aliases(models) == {"production": pipeline.model_of("v2").name, "previous": before}


def test_rerun_of_a_version_replaces_its_partitions(pipeline: Pipeline) -> None:
    before = {t: pipeline.table(t, "v1").height for t in ("raw_documents", "training_examples", "quarantine")}
    job = pipeline.defs.resolve_job_def(PIPELINE_JOB)
    result = job.execute_in_process(
        partition_key="v1",
        instance=pipeline.instance,
        asset_selection=[
            dg.AssetKey("raw_documents"),
            dg.AssetKey("clean_documents"),
            dg.AssetKey("tokenized_documents"),
            dg.AssetKey("training_examples"),
        ],
    )
    assert result.success
    assert {t: pipeline.table(t, "v1").height for t in before} == before


def test_a_failing_error_rule_blocks_training_of_that_version(pipeline: Pipeline) -> None:
    pipeline.register_demo("tiny", rows=30, seed=3)
    result = pipeline.run("tiny")
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["check_min_rows"] is False
    materialized = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert "fine_tuned_model" not in materialized and "deployed_model" not in materialized
    assert not models_of(pipeline.models, "tiny")


def test_a_model_below_the_gate_is_not_deployed(pipeline: Pipeline) -> None:
    before = read_aliases(pipeline.models)
    pipeline.register_demo("v3", rows=300, seed=4)
    result = pipeline.run("v3", min_accuracy=1.01)
    gate = [e for e in result.get_asset_check_evaluations() if e.check_name == "check_evaluation_gate"]
    assert gate and gate[0].passed is False
    assert read_aliases(pipeline.models) == before


def test_a_failing_warn_rule_shows_but_does_not_block(pipeline: Pipeline) -> None:
    from assets.demo.tickets import generate_tickets

    skewed_folder = pipeline.home.root / "incoming" / "skewed"
    skewed_folder.mkdir(parents=True)
    records, _ = generate_tickets(900, seed=8)
    keep = [r for r in records if r["category"] == "vpn_access"][:200]
    keep += [r for r in records if r["category"] not in ("vpn_access", "")][:120]
    (skewed_folder / "t.ndjson").write_text("\n".join(json.dumps(r) for r in keep) + "\n")
    (skewed_folder / "_source.yaml").write_text("text_column: body\nlabel_column: category\n")
    register_drop(pipeline.instance, pipeline.home, skewed_folder, "skewed")
    result = pipeline.run("skewed", min_accuracy=1.01)  # trained, not deployed: production stays a normal model
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["check_label_drift"].passed is False
    assert checks["check_label_drift"].severity == dg.AssetCheckSeverity.WARN
    materialized = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert "fine_tuned_model" in materialized


def test_replay_after_a_rule_change_rewrites_the_quarantine(pipeline: Pipeline, tmp_path: Path, monkeypatch) -> None:
    import shutil

    from rules.compiler import default_rule_book, default_rules_dir

    stricter = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), stricter)
    rules_file = stricter / "clean_documents.yaml"
    rules_file.write_text(
        rules_file.read_text().replace("str_length: {min: 3, max: 2000}", "str_length: {min: 60, max: 2000}")
    )
    before = pipeline.table("quarantine", "v1")
    selection = [
        dg.AssetKey(k) for k in ("raw_documents", "clean_documents", "tokenized_documents", "training_examples")
    ]
    job = pipeline.defs.resolve_job_def(PIPELINE_JOB)
    monkeypatch.setenv("REFINERY_RULES_DIR", str(stricter))
    default_rule_book.cache_clear()
    try:
        assert job.execute_in_process(partition_key="v1", instance=pipeline.instance, asset_selection=selection).success
        stricter_quarantine = pipeline.table("quarantine", "v1")
    finally:
        monkeypatch.undo()
        default_rule_book.cache_clear()
    short = stricter_quarantine.filter(pl.col("rule") == "text_length").height
    assert short > before.filter(pl.col("rule") == "text_length").height
    records_read = pipeline.table("raw_documents", "v1").height + before.filter(pl.col("stage") == "ingest").height
    assert pipeline.table("training_examples", "v1").height + stricter_quarantine.height == records_read
    assert stricter_quarantine.select("stage", "source", "source_row").is_duplicated().sum() == 0
    assert job.execute_in_process(partition_key="v1", instance=pipeline.instance, asset_selection=selection).success
    assert pipeline.table("quarantine", "v1").height == before.height


def test_the_selection_matrix_compares_candidates_on_val_and_names_the_chosen_one(pipeline: Pipeline) -> None:
    matrix = pipeline.table("model_candidates", "v1")
    assert sorted(matrix["candidate"]) == ["encoder-frozen-logreg@tiny-bert", "tfidf-logreg"]  # config names it
    assert matrix["chosen"].sum() == 1 and matrix["pareto"].any()
    chosen = matrix.filter(pl.col("chosen")).row(0, named=True)
    assert chosen["val_macro_f1"] == matrix["val_macro_f1"].max()
    event = pipeline.instance.get_latest_materialization_event(dg.AssetKey("model_candidates"))
    metadata = event.asset_materialization.metadata
    assert metadata["chosen"].value == chosen["candidate"] and metadata["quality_against_latency"].value.startswith(
        "!["
    )


def test_the_deployed_model_cites_only_masked_training_examples_with_their_source(pipeline: Pipeline) -> None:
    production = resolve_alias(pipeline.models)
    rows = pl.read_parquet(production / EVIDENCE_ROWS)
    assert read_card(production)["evidence"]["rows"] == rows.height > 0
    assert rows["text"].str.contains("<EMAIL>").any()  # the demo's tickets carry e-mail addresses: masked here
    assert not rows["text"].str.contains(r"@example\.com").any()
    assert rows.select("source", "source_row", "dataset_version").null_count().sum_horizontal().item() == 0
    assert set(rows["dataset_version"]) <= set(read_card(production)["dataset_versions"])


def readme_commands() -> list[list[str]]:
    """The commands of the README's blocks marked runnable, each split as a shell would, comments dropped."""
    import re
    import shlex

    from assets.storage.home import PROJECT_ROOT

    text = (PROJECT_ROOT / "README.md").read_text()
    blocks = re.findall(r"<!-- runnable[^>]*-->\s*```sh\n(.*?)```", text, flags=re.S)
    return [shlex.split(line, comments=True) for block in blocks for line in block.splitlines() if line.strip()]


def test_every_runnable_command_in_the_readme_runs_as_printed_on_a_demo_home(pipeline: Pipeline) -> None:
    from tests.dagster_project.test_cli import _refinery

    commands = readme_commands()
    assert len(commands) >= 4 and all(command[0] == ".venv/bin/refinery" for command in commands)
    for command in commands:
        ran = _refinery(pipeline.home.root, *command[1:])
        assert ran.returncode == 0, f"{' '.join(command)}: {ran.stderr[-2000:]}"
        assert ran.stdout.strip(), f"{' '.join(command)} printed nothing"


def test_each_dataset_has_its_own_keys_for_every_number_so_the_ui_plots_its_history_apart(pipeline: Pipeline) -> None:
    result = pipeline.first_result
    by_asset = {
        m.asset_key.to_user_string(): m.event_specific_data.materialization.metadata
        for m in result.get_asset_materialization_events()
    }
    raw = by_asset["raw_documents"]
    assert raw["records_read · tickets"] == raw["records_read"] and "dagster/row_count · tickets" not in raw
    assert by_asset["model_evaluation"]["test_macro_f1 · tickets"] == by_asset["model_evaluation"]["test_macro_f1"]
    checks = {e.check_name: e.metadata for e in result.get_asset_check_evaluations()}
    assert checks["check_nothing_lost"]["unaccounted · tickets"].value == 0
    assert "observed · tickets" in checks["check_max_rejected_rate"]
