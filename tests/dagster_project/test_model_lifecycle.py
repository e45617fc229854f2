"""Models end to end: the gate and rollback, drift, the service, one text recipe on every path, feedback."""

import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from dagster_project.versions import register_drop
from service.app import build_app
from service.server import ServiceThread
from tests.dagster_project.pipeline import Pipeline
from tests.servers import call
from trainers.registry import list_models, models_of, read_aliases, read_card

pytestmark = pytest.mark.slow


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

    registry = {"registry": pipeline.defs.resources["registry"]}
    context = dg.build_sensor_context(instance=pipeline.instance, definitions=pipeline.defs, resources=registry)
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
        labels = set(json.loads((pipeline.models / production / "label_map.json").read_text()))
        assert status == 200 and body["model_version"] == production
        assert [p["label"] in labels and 0 < p["score"] <= 1 for p in body["predictions"]] == [True, True]
        assert call(f"{base}/predict", raw=b"{not json")[0] == 400
        assert call(f"{base}/predict", raw=json.dumps({"texts": []}).encode())[0] == 400
        assert call(f"{base}/predict", raw=json.dumps({"texts": [3]}).encode()) == (
            400,
            {"error": "texts[0] is not a string"},
        )
        assert call(f"{base}/nope", raw=b"{}")[0] == 404


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

    from trainers.kinds import load_classifier

    texts = _texts_with_pii_replies_and_markup(200)
    production = read_aliases(pipeline.models)["production"]
    folder = pipeline.models / production
    classifier = load_classifier(folder)  # evaluation's path: probabilities of the prepared texts, then decide
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
    cli = subprocess.run(
        [sys.executable, "-m", "dagster_project.cli", "predict", *texts],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=True,
    )
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


def test_feedback_labels_become_a_version_of_their_own_and_reach_the_next_models_card(pipeline: Pipeline) -> None:
    from assets.demo.tickets import generate_tickets
    from dagster_project.sensors import feedback_sensor

    records, _ = generate_tickets(600, seed=31)
    labelled = [r for r in records if r["category"] and r["body"].strip() and len(r["body"]) < 500][:240]
    with ServiceThread(build_app(pipeline.models, lake=pipeline.home.lake, token="", quantize=False)) as service:
        answers = []
        for start in range(0, len(labelled), 120):
            status, body = call(f"{service.url}/predict", {"texts": [r["body"] for r in labelled[start : start + 120]]})
            assert status == 200
            answers += body["predictions"]
        feedback = [  # a refused text has no prediction to label
            {"prediction_id": a["id"], "label": r["category"]}
            for a, r in zip(answers, labelled, strict=True)
            if a["label"] is not None
        ]
        forged = {"feedback": [{"prediction_id": "no-such-prediction", "label": "vpn_access"}]}
        assert call(f"{service.url}/feedback", forged)[0] == 400  # only predictions the service made
        for start in range(0, len(feedback), 120):
            assert call(f"{service.url}/feedback", {"feedback": feedback[start : start + 120]})[0] == 200

    resources = {"lake": pipeline.defs.resources["lake"], "landing": pipeline.defs.resources["landing"]}
    context = dg.build_sensor_context(instance=pipeline.instance, resources=resources)
    result = feedback_sensor(context)
    (request,) = result.run_requests
    version = request.partition_key
    assert version.startswith("tickets-feedback-") and request.run_key == version  # named after its dataset
    pipeline.instance.add_dynamic_partitions("dataset_versions", [version])
    again = feedback_sensor(
        dg.build_sensor_context(instance=pipeline.instance, resources=resources, cursor=result.cursor)
    )
    assert isinstance(again, dg.SkipReason)  # the same labels never become two versions

    production = read_aliases(pipeline.models)["production"]
    pipeline.run(version, min_accuracy=1.01)  # trained and evaluated, kept out of production by the gate
    assert read_aliases(pipeline.models)["production"] == production
    examples = pipeline.table("training_examples", version)
    assert examples.height > 50 and set(examples["label"]) <= {r["category"] for r in labelled}
    assert not examples["text"].str.contains("@").any()  # the service logged prepared, masked text
    card = read_card(pipeline.model_of(version))
    assert version in card["dataset_versions"] and card["dataset_versions"][0] == "v1"
