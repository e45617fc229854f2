"""From HTTP feedback to a deployed preference-tuned model: the service's answers are corrected through /feedback,
the sensor turns the corrections into a preference dataset version that tunes the SFT dataset's production model,
and the run trains, gates and deploys it, served beside the model it tuned."""

from __future__ import annotations

import random
from pathlib import Path

import dagster as dg
import polars as pl
import yaml

from assets.datasets.answer_feedback import preference_pairs
from assets.storage.home import RefineryHome
from dagster_project.jobs import PIPELINE_JOB
from dagster_project.sensors import answer_feedback_sensor
from service.app import build_app
from service.server import ServiceThread
from tests.dagster_project.pipeline import Pipeline
from tests.dagster_project.test_generation_dataset import DEVICES, FAULTS, STEPS, write_answers
from tests.dagster_project.test_generation_dataset import declare as declare_answers
from tests.servers import call
from trainers.registry import read_aliases, read_card

GATE = {"min_accuracy": 0.0, "min_macro_f1": 0.0, "max_regression": 1.0, "min_rouge_l": 0.0, "min_gain_over_base": -1.0}


def test_corrections_sent_to_the_service_become_a_deployed_preference_tuned_model(
    tmp_path: Path, tiny_causal_lm: Path
) -> None:
    home = RefineryHome(tmp_path / "home").ensure()
    declare_answers(home, tiny_causal_lm)
    write_answers(tmp_path / "answers", 160)
    questions = [f"my {d} {f} after the move, what now?" for d in DEVICES for f in FAULTS][:60]
    rng = random.Random(7)
    with dg.instance_for_test(temp_dir=str(home.dagster)) as instance:
        pipeline = Pipeline(home, instance, tiny_causal_lm)
        job = pipeline.defs.resolve_job_def(PIPELINE_JOB)
        pipeline.register(tmp_path / "answers", "answers-v1", "answers")
        config = {"ops": {"model_evaluation": {"config": GATE}}}
        assert job.execute_in_process(partition_key="answers-v1", instance=instance, run_config=config).success

        with ServiceThread(build_app(home.models, lake=home.lake_uri, token="", quantize=False)) as service:
            ids = []
            for question in questions:
                status, body = call(f"{service.url}/generate/answers", {"prompt": question, "max_new_tokens": 8})
                assert status == 200
                ids.append(body["generation_id"])
            chat = {"model": "answers", "messages": [{"role": "user", "content": questions[0]}], "max_tokens": 8}
            status, completion = call(f"{service.url}/v1/chat/completions", chat)
            assert status == 200 and completion["id"].startswith("chatcmpl-")
            corrections = [
                {"prediction_id": i, "correction": f"thank you for asking. {' then '.join(rng.sample(STEPS, 3))}."}
                for i in ids
            ]
            assert call(f"{service.url}/feedback", {"feedback": corrections})[0] == 200
            rated = {"feedback": [{"prediction_id": completion["id"], "rating": "down"}]}  # OpenAI's id works too
            assert call(f"{service.url}/feedback", rated)[0] == 200
            assert call(f"{service.url}/feedback", {"feedback": [{"prediction_id": "nope", "rating": "up"}]})[0] == 400
            bad = {"feedback": [{"prediction_id": ids[0], "rating": "meh"}]}
            assert call(f"{service.url}/feedback", bad)[0] == 400
            labelled = {"feedback": [{"prediction_id": ids[0], "label": "vpn_access"}]}
            status, refused = call(f"{service.url}/feedback", labelled)
            assert status == 400 and "is a generation: it takes a rating or a correction" in str(refused)

        resources = {"lake": pipeline.defs.resources["lake"], "landing": pipeline.defs.resources["landing"]}
        waiting = answer_feedback_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert isinstance(waiting, dg.SkipReason) and "answers-preferences.yaml" in waiting.skip_message
        preferences = {  # what the skip message asks for, sized for a tiny model
            "name": "answers-preferences",
            "tasks": [{"name": "tone", "kind": "preference"}],
            "training": {
                "model_name_or_path": "answers@production",
                "learning_rate": 5e-3,
                "max_epochs": 2,
                "batch_size": 8,
                "max_length": 64,
                "max_new_tokens": 8,
            },
        }
        (home.datasets / "answers-preferences.yaml").write_text(yaml.safe_dump(preferences))
        tick = answer_feedback_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        (request,) = tick.run_requests  # the feedback waited for the declaration: nothing was skipped
        version = request.partition_key
        assert version.startswith("answers-preferences-feedback-")
        instance.add_dynamic_partitions("dataset_versions", [version])
        again = dg.build_sensor_context(instance=instance, resources=resources, cursor=tick.cursor)
        assert isinstance(answer_feedback_sensor(again), dg.SkipReason)  # the same corrections never land twice

        config = {"ops": {"model_evaluation": {"config": {**GATE, "min_preference_accuracy": 0.6}}}}
        result = job.execute_in_process(partition_key=version, instance=instance, run_config=config)
        assert result.success
        pairs = pipeline.table("training_examples", version)

    assert pairs.height >= 50 and (pairs["chosen"].str.starts_with("thank you for asking")).all()
    assert pairs["source_id"].str.starts_with("correction:").all()
    models = home.models / "answers-preferences"
    card = read_card(models / read_aliases(models)["production"])
    assert card["model_kind"] == "preference" and card["dataset_versions"] == [version]
    assert card["lineage"]["base_from"]["model_version"] == read_aliases(home.models / "answers")["production"]
    assert card["test_evaluation"]["metrics"]["preference_accuracy"] >= 0.6 and card["evaluation_gate"]["passed"]
    with ServiceThread(build_app(home.models, token="", quantize=False)) as service:
        status, body = call(
            f"{service.url}/generate/answers-preferences", {"prompt": questions[1], "max_new_tokens": 8}
        )
    assert status == 200 and body["model_version"] == models.joinpath(read_aliases(models)["production"]).name


def test_answers_rated_up_and_down_to_one_prompt_pair_up_and_a_correction_beats_its_answer() -> None:
    judged = pl.DataFrame(
        {
            "prediction_id": ["a", "b", "c", "d", "e"],
            "rating": ["up", "down", "down", None, "up"],
            "correction": [None, None, None, "reboot the router, then sign in.", None],
            "dataset": ["answers"] * 5,
            "prompt": ["p1", "p1", "p1", "p2", "p3"],
            "context": [
                None,
                None,
                None,
                None,
                '[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]',
            ],
            "answer": ["good", "bad", "worse", "no idea.", "lonely"],
        }
    )
    pairs = {p["pair_id"]: (p["prompt"], p["chosen"], p["rejected"]) for p in preference_pairs(judged)}
    assert pairs == {
        "correction:d": ("p2", "reboot the router, then sign in.", "no idea."),
        "ratings:a>b": ("p1", "good", "bad"),
        "ratings:a>c": ("p1", "good", "worse"),
    }  # "e" was rated up with nothing rated down beside it: no pair


def rated(rows: list[tuple[str, str, str, str]]) -> pl.DataFrame:
    """Judged answers: (id, rating, prompt, answer), no corrections, no context."""
    return pl.DataFrame(
        {
            "prediction_id": [r[0] for r in rows],
            "rating": [r[1] for r in rows],
            "correction": pl.Series([None] * len(rows), dtype=pl.String),
            "received_at": [float(n) for n in range(len(rows))],
            "dataset": ["answers"] * len(rows),
            "prompt": [r[2] for r in rows],
            "context": pl.Series([None] * len(rows), dtype=pl.String),
            "answer": [r[3] for r in rows],
        }
    )


def test_a_new_rating_pairs_with_the_earlier_ratings_of_its_prompt_and_old_pairs_are_not_made_again() -> None:
    earlier = rated([("a", "up", "p1", "good"), ("c", "down", "p1", "worse"), ("x", "up", "p9", "alone")])
    new = rated([("b", "down", "p1", "bad")])
    pairs = [(p["pair_id"], p["chosen"], p["rejected"]) for p in preference_pairs(new, earlier)]
    assert pairs == [("ratings:a>b", "good", "bad")]  # a>c was made when c came; p9 has no new rating
