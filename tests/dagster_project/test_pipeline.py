"""The whole asset graph for real dataset versions: real lake, real instance, a tiny model, real HTTP."""

import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.demo.tickets import write_demo_drop
from assets.storage.home import RefineryHome
from dagster_project.definitions import build_definitions
from dagster_project.jobs import PIPELINE_JOB
from dagster_project.versions import register_drop
from tests.conftest import build_tiny_model
from tests.servers import call
from trainers.registry import list_models, models_of, read_aliases, read_card
from trainers.serving.app import build_app
from trainers.serving.server import ServiceThread

pytestmark = pytest.mark.slow

ASSET_KEYS = {
    "raw_documents",
    "clean_documents",
    "tokenized_documents",
    "training_examples",
    "fine_tuned_model",
    "model_evaluation",
    "deployed_model",
}


def _run_config(
    model: Path,
    min_accuracy: float = 0.0,
    learning_rate: float = 1e-3,
    max_regression: float = 1.0,  # no regression check unless a test asks for one
    force: bool = False,
    max_epochs: int = 1,
) -> dict:
    evaluation = {"min_accuracy": min_accuracy, "min_macro_f1": 0.0, "max_regression": max_regression, "force": force}
    return {
        "ops": {
            "fine_tuned_model": {
                "config": {"model_name_or_path": str(model), "max_epochs": max_epochs, "learning_rate": learning_rate}
            },
            "model_evaluation": {"config": evaluation},
        }
    }


class Pipeline:
    """One temporary home with its instance, and helpers to run versions through the graph."""

    def __init__(self, home: RefineryHome, instance: dg.DagsterInstance, model: Path):
        self.home, self.instance, self.model = home, instance, model
        self.defs = build_definitions(home)

    def register_demo(self, version: str, rows: int, seed: int) -> None:
        write_demo_drop(self.home.root / "incoming" / version, rows=rows, seed=seed)
        register_drop(self.instance, self.home, self.home.root / "incoming" / version, version)

    def run(self, version: str, **config) -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_job_def(PIPELINE_JOB)
        return job.execute_in_process(
            partition_key=version,
            instance=self.instance,
            run_config=_run_config(self.model, **config),
            raise_on_error=False,
        )

    def run_job(self, job_name: str, version: str, run_config: dict | None = None) -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_job_def(job_name)
        return job.execute_in_process(
            partition_key=version, instance=self.instance, run_config=run_config or {}, raise_on_error=False
        )

    @property
    def models(self) -> Path:
        return self.home.models / "refinery-intent"

    def model_of(self, version: str) -> Path:
        """The newest model folder trained for a dataset version."""
        return models_of(self.models, version)[-1]

    def table(self, name: str, version: str) -> pl.DataFrame:
        return pl.read_delta(str(self.home.lake / name)).filter(pl.col("dataset_version") == version)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("e2e")
    model = build_tiny_model(root / "tiny-bert")
    home = RefineryHome(root / "home").ensure()
    with dg.instance_for_test(temp_dir=str(home.dagster)) as instance:
        built = Pipeline(home, instance, model)
        built.register_demo("v1", rows=400, seed=1)
        built.first_result = built.run("v1")
        built.first_aliases = read_aliases(home.models / "refinery-intent")
        yield built


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
        "check_no_repeated_texts": True,
        "check_text_length_distribution": True,
        "check_label_drift": True,
        "check_length_drift": True,
        "check_no_split_leakage": True,
        "check_nothing_lost": True,
        "check_evaluation_gate": True,
    }


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
    before = read_aliases(pipeline.home.models / "refinery-intent")
    pipeline.register_demo("v3", rows=300, seed=4)
    result = pipeline.run("v3", min_accuracy=1.01)
    gate = [e for e in result.get_asset_check_evaluations() if e.check_name == "check_evaluation_gate"]
    assert gate and gate[0].passed is False
    assert read_aliases(pipeline.home.models / "refinery-intent") == before


def test_a_model_worse_than_production_is_blocked_until_forced_and_rollback_restores(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster_project.cli import main

    models = pipeline.models
    pipeline.register_demo("good", rows=400, seed=5)
    assert pipeline.run("good", max_epochs=12, learning_rate=3e-3).success  # a model that learned something
    production = read_aliases(models)["production"]
    assert production == pipeline.model_of("good").name
    production_accuracy = read_card(models / production)["test_evaluation"]["metrics"]["accuracy"]
    pipeline.register_demo("worse", rows=300, seed=6)
    result = pipeline.run("worse", learning_rate=0.0, max_regression=0.0)  # an untrained head
    gate = next(e for e in result.get_asset_check_evaluations() if e.check_name == "check_evaluation_gate")
    blocked = pipeline.model_of("worse")
    card = read_card(blocked)
    assert gate.passed is False, (card["test_evaluation"]["metrics"], production_accuracy)
    assert card["production_comparison"]["version"] == production
    assert "accuracy" in card["evaluation_gate"]["regressions"] or "macro_f1" in card["evaluation_gate"]["regressions"]
    assert read_aliases(models)["production"] == production

    forced = pipeline.run("worse", learning_rate=0.0, max_regression=0.0, force=True)
    assert forced.success
    deployed = pipeline.model_of("worse")
    assert deployed != blocked and models_of(models, "worse") == [blocked, deployed]  # a new version; none overwritten
    assert read_card(blocked)["evaluation_gate"]["forced"] is False
    assert read_card(deployed)["evaluation_gate"]["forced"] is True
    assert read_aliases(models) == {"production": deployed.name, "previous": production}
    gates = {row["version"]: row["gate"] for row in list_models(models)}
    assert gates[deployed.name] == "forced" and gates[blocked.name] == "failed"

    monkeypatch.setenv("REFINERY_HOME", str(pipeline.home.root))
    assert main(["rollback"]) == 0
    assert read_aliases(models) == {"production": production, "previous": deployed.name}


def _write_shifted_drop(folder: Path, labels: list[str]) -> Path:
    """A drop of valid tickets whose texts come from another domain and are much longer."""
    import csv

    folder.mkdir(parents=True)
    import random

    rng = random.Random(8)
    stems = ["revenue", "ledger", "forecast", "accrual", "subsidiary", "equity", "dividend", "hedging", "solvency"]
    words = [f"{stem}{suffix}" for stem in stems for suffix in "abcdefgh"]
    with (folder / "tickets.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ticket_id", "body", "category"])
        for i in range(120):
            body = " ".join(rng.choices(words, k=rng.randint(90, 130)))
            writer.writerow([f"S{i}", body, labels[i % len(labels)]])
    (folder / "_source.yaml").write_text("text_column: body\nlabel_column: category\nid_column: ticket_id\n")
    return folder


def _check(result: dg.ExecuteInProcessResult, name: str):
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == name)


def test_drift_on_a_shifted_version_fails_its_checks_and_requests_retraining(pipeline: Pipeline) -> None:
    from dagster_project.jobs import MONITORING_JOB
    from dagster_project.sensors import drift_retraining_sensor

    models = pipeline.models
    production = read_aliases(models)["production"]
    same = pipeline.run_job(MONITORING_JOB, read_card(models / production)["lineage"]["dataset_version"])
    assert same.success
    assert _check(same, "check_length_drift").passed and _check(same, "check_oov_shift").passed

    labels = sorted(read_card(models / production)["label_map"])
    drop = _write_shifted_drop(pipeline.home.root / "incoming" / "shifted", labels)
    register_drop(pipeline.instance, pipeline.home, drop, "shifted")
    prepared = pipeline.defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={dg.AssetKey("raw_documents"), dg.AssetKey("clean_documents")}
    )
    assert prepared.execute_in_process(partition_key="shifted", instance=pipeline.instance).success
    shifted = pipeline.run_job(MONITORING_JOB, "shifted")
    for name in ("check_length_drift", "check_oov_shift"):
        evaluation = _check(shifted, name)
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR, name
    assert len(pipeline.table("batch_predictions", "shifted")) == 120

    context = dg.build_sensor_context(instance=pipeline.instance, definitions=pipeline.defs)
    with dg.partition_loading_context(dynamic_partitions_store=pipeline.instance):
        request = drift_retraining_sensor.evaluate_tick(context).run_requests
    assert len(request) == 1 and request[0].tags["refinery/drifted_partition"] == "shifted"
    assert request[0].partition_key == pipeline.instance.get_dynamic_partitions("dataset_versions")[-1]


def test_server_answers_predict_and_health_and_rejects_bad_input(pipeline: Pipeline) -> None:
    app = build_app(pipeline.models, lake=None, token="")
    production = read_aliases(pipeline.models)["production"]
    with ServiceThread(app) as service:
        base = service.url
        assert call(f"{base}/health")[1]["model_version"] == production
        status, body = call(f"{base}/predict", {"texts": ["my vpn keeps dropping", "printer jam"]})
        labels = set(json.loads((pipeline.home.models / "refinery-intent" / production / "label_map.json").read_text()))
        assert status == 200 and body["model_version"] == production
        assert [p["label"] in labels and 0 < p["score"] <= 1 for p in body["predictions"]] == [True, True]
        assert call(f"{base}/predict", raw=b"{not json")[0] == 400
        assert call(f"{base}/predict", raw=json.dumps({"texts": []}).encode())[0] == 400
        assert call(f"{base}/predict", raw=json.dumps({"texts": [3]}).encode()) == (
            400,
            {"error": "texts[0] is not a string"},
        )
        assert call(f"{base}/nope", raw=b"{}")[0] == 404


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


def _texts_with_pii_replies_and_markup(count: int) -> list[str]:
    from assets.demo.tickets import generate_tickets

    records, _ = generate_tickets(count * 2, seed=21)
    bodies = [r["body"] for r in records if r["body"] and r["body"].strip()][:count]
    decorations = [
        lambda b, i: f"<p>{b}</p><br/>contact me at user{i}@corp.example",
        lambda b, i: f"{b}\n\nOn Mon, 3 Nov 2026 at 09:12, IT <it@corp.example> wrote:\n> did you restart it?",
        lambda b, i: f"{b} call +44 20 7946 {i:04d} or card 4111 1111 1111 1111",
        lambda b, i: f"{b}&nbsp;&amp; thanks\n-- \nAnna Example | Finance | anna@corp.example",
    ]
    texts = [decorations[i % 4](body, i) for i, body in enumerate(bodies)]
    texts[7] = "<br/><p>  </p>"  # nothing left after cleaning: refused on every path
    return [text[:5000] for text in texts]  # within a request's limit; longer than the model learned from


def test_the_same_texts_get_the_same_answers_on_every_path_and_no_raw_pii_is_logged(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    from trainers.inference import Classifier

    texts = _texts_with_pii_replies_and_markup(200)
    production = read_aliases(pipeline.models)["production"]
    folder = pipeline.models / production
    classifier = Classifier(folder)  # evaluation's path: probabilities of the prepared texts, then decide
    evaluated = classifier.decide(classifier.probabilities(texts))
    refused = [p.refused is not None for p in classifier.predict(texts)]
    too_long = {i for i, text in enumerate(texts) if len(text) > 2000}  # the demo plants oversized tickets
    assert {i for i, r in enumerate(refused) if r} == {7} | too_long

    pl.DataFrame({"doc_id": [f"t{i}" for i in range(200)], "text": texts}).write_parquet(tmp_path / "texts.parquet")
    version = read_card(folder)["lineage"]["dataset_version"]
    scoring = pipeline.defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={dg.AssetKey("batch_predictions")}
    )
    config = {"ops": {"batch_predictions": {"config": {"input_path": str(tmp_path / "texts.parquet")}}}}
    assert scoring.execute_in_process(partition_key=version, instance=pipeline.instance, run_config=config).success
    batch = pipeline.table("batch_predictions", version).sort(pl.col("doc_id").str.slice(1).cast(pl.Int64))

    environment = {**os.environ, "REFINERY_HOME": str(pipeline.home.root)}
    cli = subprocess.run([sys.executable, "-m", "dagster_project.cli", "predict", *texts], capture_output=True,
                         text=True, env=environment, timeout=300, check=True)  # fmt: skip
    printed = [line.split("\t") for line in cli.stdout.splitlines()]
    assert len(printed) == 200

    lake = tmp_path / "lake"
    with ServiceThread(build_app(pipeline.models, lake=lake, token="", quantize=False)) as service:
        status, body = call(f"{service.url}/predict", {"texts": texts[:100]})
        status_2, body_2 = call(f"{service.url}/predict", {"texts": texts[100:]})
    assert status == status_2 == 200
    served = body["predictions"] + body_2["predictions"]

    for i, reference in enumerate(evaluated):
        if refused[i]:
            assert batch["label"][i] is None and batch["refused"][i] and printed[i][0] == "refused"
            assert served[i]["label"] is None and served[i]["refused"]
            continue
        assert batch["label"][i] == printed[i][0] == served[i]["label"] == reference.label, i
        assert abs(batch["score"][i] - reference.score) < 1e-5 and abs(served[i]["score"] - reference.score) < 1e-5
        assert abs(float(printed[i][1]) - reference.score) < 1e-4  # the CLI prints 4 decimals
    logged = pl.read_delta(str(lake / "predictions"))["text"].to_list() + batch["text"].to_list()
    assert len(logged) == 200 + 200 - sum(refused)  # the service logs answered texts only
    for raw in ("@corp.example", "7946", "4111 1111"):
        assert not any(raw in text for text in logged if text), raw
