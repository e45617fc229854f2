"""A generation dataset (prompts and responses) goes from its declaration through cleaning, rules, splits and an SFT
fine-tune to a gated, deployed causal LM answering on /generate."""

from __future__ import annotations

import json
import random
from pathlib import Path

import dagster as dg
import polars as pl
import yaml

from assets.monitoring import batch_generations
from assets.storage.home import RefineryHome
from dagster_project.definitions import build_resources
from dagster_project.jobs import MONITORING_JOB, PIPELINE_JOB
from service.app import build_app
from service.server import ServiceThread
from tests.dagster_project.pipeline import Pipeline
from tests.dagster_project.test_cli import _refinery
from tests.servers import call
from trainers.registry import read_aliases, read_card

DEVICES = ["printer", "laptop", "badge", "router", "monitor", "phone", "scanner", "headset", "keyboard", "tablet"]
FAULTS = ["keeps beeping", "will not start", "shows a red light", "is very slow", "loses its connection"]
STEPS = [
    "unplug it for a minute",
    "update its driver",
    "check the cable",
    "restart it twice",
    "sign in again",
    "clear its cache",
    "call the help desk",
    "swap the battery",
]


BATCH = {"ops": {"batch_generations": {"config": {"max_new_tokens": 8}}}}


def write_answers(folder: Path, rows: int, seed: int = 3) -> None:
    """Support questions and answers, plus one answer leaking an e-mail, one empty and one cut off."""
    rng = random.Random(seed)
    records = []
    for n in range(rows):
        device, fault = rng.choice(DEVICES), rng.choice(FAULTS)
        steps = rng.sample(STEPS, 2)
        question = f"my {device} {fault} since ticket {1000 + n}, what should i do?"
        answer = f"for the {device}: {steps[0]} and then {steps[1]}."
        records.append({"question": question, "answer": answer})
    records[0]["answer"] = "write to anna.smith@example.com and she will fix the printer."
    records[1]["answer"] = ""
    records[2]["answer"] = "for the laptop: first unplug it and then..."
    folder.mkdir(parents=True)
    pl.DataFrame(records).write_csv(folder / "answers.csv")


def declare(home: RefineryHome, base: Path) -> None:
    declaration = {
        "name": "answers",
        "source": {"text_column": "question", "response_column": "answer"},
        "tasks": [{"name": "reply", "kind": "generation"}],
        "training": {
            "model_name_or_path": str(base),
            "max_epochs": 4,
            "learning_rate": 3e-3,
            "lora_rank": 16,
            "lora_alpha": 32,
            "batch_size": 8,
            "max_length": 64,
            "eval_prompts": 8,
            "max_new_tokens": 16,
        },
    }
    (home.datasets / "answers.yaml").write_text(yaml.safe_dump(declaration))


def test_a_generation_dataset_goes_from_its_declaration_to_a_served_causal_lm(
    tmp_path: Path, tiny_causal_lm: Path
) -> None:
    base = tiny_causal_lm
    home = RefineryHome(tmp_path / "home").ensure()
    declare(home, base)
    write_answers(tmp_path / "drop", 240)
    gate = {"min_accuracy": 0.0, "min_macro_f1": 0.0, "max_regression": 1.0, "min_rouge_l": 0.05}
    with dg.instance_for_test(temp_dir=str(home.dagster)) as instance:
        pipeline = Pipeline(home, instance, base)
        pipeline.register(tmp_path / "drop", "answers-v1", "answers")
        job = pipeline.defs.resolve_job_def(PIPELINE_JOB)
        result = job.execute_in_process(
            partition_key="answers-v1",
            instance=instance,
            raise_on_error=False,
            run_config={"ops": {"model_evaluation": {"config": gate}}},
        )
        assert result.success, [e.message for e in result.all_events if e.is_failure]

        clean = pipeline.table("clean_documents", "answers-v1")
        leaked = clean.filter(pl.col("text").str.contains("ticket 1000,"))
        assert leaked["response"].to_list() == ["write to <EMAIL> and she will fix the printer."]
        quarantine = pipeline.table("quarantine", "answers-v1")
        by_rule = dict(quarantine.group_by("rule").len().iter_rows())
        assert (
            by_rule.get("response_not_truncated") == 1
            and by_rule.get("response", 0) + by_rule.get("response_not_blank", 0) + by_rule.get("response_length", 0)
            >= 1
        )
        cut = quarantine.filter(pl.col("rule") == "response_not_truncated")
        assert json.loads(cut["record"][0])["original_response"].endswith("then...")  # nothing of it is lost

        examples = pipeline.table("training_examples", "answers-v1")
        assert examples["response"].null_count() == 0 and set(examples["split"]) == {"train", "val", "test"}
        read = result.asset_materializations_for_node("raw_documents")[0].metadata["records_read"].value
        assert read == 240 and examples.height + quarantine.height == read

        evaluated = result.asset_materializations_for_node("model_evaluation")[0].metadata
        assert evaluated["test_rouge_l"].value >= 0.05 and evaluated["test_perplexity"].value > 1
        assert "| prompt | reference | answer |" in evaluated["samples"].value

        answered = dg.materialize(
            [batch_generations],
            partition_key="answers-v1",
            instance=instance,
            resources=build_resources(home),
            run_config=BATCH,
        )
        assert answered.success
        generations = pipeline.table("batch_generations", "answers-v1").sort("doc_id")
        assert generations["doc_id"].to_list() == clean.sort("doc_id")["doc_id"].to_list()
        assert generations["refused"].null_count() == generations.height and generations["answer"].is_not_null().all()
        assert generations["tokens"].max() <= 8
        assert not pipeline.run_job(MONITORING_JOB, "answers-v1").success  # a causal LM labels nothing: refused

    models = home.models / "answers"
    production = models / read_aliases(models)["production"]
    card = read_card(production)
    assert card["model_kind"] == "causal_lm" and card["dataset_versions"] == ["answers-v1"]
    assert card["val_loss"] < card["val_loss_before"] - 0.5 and card["evaluation_gate"]["passed"]
    with ServiceThread(build_app(home.models, token="")) as service:
        status, body = call(
            f"{service.url}/generate/answers",
            {"prompt": "my router is very slow, what should i do?", "max_new_tokens": 16},
        )
    assert status == 200 and body["model_version"] == production.name and body["text"]


def test_init_declares_a_generation_dataset_that_run_takes_to_a_deployed_causal_lm(
    tmp_path: Path, tiny_causal_lm: Path
) -> None:
    base = tiny_causal_lm
    write_answers(tmp_path / "drop", 240)
    home = tmp_path / "home"
    init = _refinery(
        home,
        "init",
        str(tmp_path / "drop" / "answers.csv"),
        "--response-column",
        "answer",
        "--base-model",
        str(base),
        "--json",
    )
    assert init.returncode == 0, init.stderr
    profile = json.loads(init.stdout[: init.stdout.index("\ndeclared")])
    assert profile["mapping"]["text_column"] == "question" and profile["pii"]["response"] == {"email": 1}
    declared = yaml.safe_load((home / "datasets" / "answers.yaml").read_text())
    assert declared["tasks"] == [{"name": "response", "kind": "generation"}]
    settings = {"max_epochs": 4, "learning_rate": 3e-3, "lora_rank": 16, "lora_alpha": 32, "max_length": 64}
    config = {"ops": {"fine_tuned_model": {"config": settings}, "model_evaluation": {"config": {"min_rouge_l": 0.05}}}}
    run = _refinery(home, "run", "--config", json.dumps(config))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "(production)" in run.stdout
    card = read_card(home / "models" / "answers" / read_aliases(home / "models" / "answers")["production"])
    assert card["model_kind"] == "causal_lm" and card["params"]["learning_rate"] == 3e-3


def write_chats(folder: Path, rows: int, seed: int = 4) -> None:
    """Two-turn support chats as JSON Lines (a system message, a greeting, then the question that is answered)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    with (folder / "chats.jsonl").open("w") as handle:
        for n in range(rows):
            device, fault, steps = rng.choice(DEVICES), rng.choice(FAULTS), rng.sample(STEPS, 2)
            messages = [
                {"role": "system", "content": "you answer support questions briefly."},
                {"role": "user", "content": f"hello, this is case {5000 + n}, reach me at case{n}@example.com"},
                {"role": "assistant", "content": "hello, how can i help with your case?"},
                {"role": "user", "content": f"my {device} {fault}, what should i do?"},
                {"role": "assistant", "content": f"for the {device}: {steps[0]} and then {steps[1]}."},
            ]
            handle.write(json.dumps({"id": f"chat-{n}", "messages": messages}) + "\n")


def test_a_chat_dataset_trains_on_whole_conversations_with_personal_data_masked_in_every_turn(
    tmp_path: Path, tiny_causal_lm: Path
) -> None:
    base = tiny_causal_lm
    home = RefineryHome(tmp_path / "home").ensure()
    declaration = {
        "name": "chats",
        "source": {"messages_column": "messages", "id_column": "id"},
        "tasks": [{"name": "reply", "kind": "generation"}],
        "training": {
            "model_name_or_path": str(base),
            "max_epochs": 2,
            "learning_rate": 3e-3,
            "max_length": 96,
            "eval_prompts": 4,
            "max_new_tokens": 8,
        },
    }
    (home.datasets / "chats.yaml").write_text(yaml.safe_dump(declaration))
    write_chats(tmp_path / "drop", 150)
    gate = {"min_rouge_l": 0.0, "max_regression": 1.0}
    with dg.instance_for_test(temp_dir=str(home.dagster)) as instance:
        pipeline = Pipeline(home, instance, base)
        pipeline.register(tmp_path / "drop", "chats-v1", "chats")
        job = pipeline.defs.resolve_job_def(PIPELINE_JOB)
        result = job.execute_in_process(
            partition_key="chats-v1",
            instance=instance,
            raise_on_error=False,
            run_config={"ops": {"model_evaluation": {"config": gate}}},
        )
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        examples = pipeline.table("training_examples", "chats-v1")
        quarantined = pipeline.table("quarantine", "chats-v1")
        assert examples.height + quarantined.height == 150 and examples.height >= 140  # near-copies: quarantined
        assert examples["context"].null_count() == 0
        first = json.loads(examples.sort("source_row")["context"][0])
        assert [m["role"] for m in first] == ["system", "user", "assistant"] and "<EMAIL>" in first[1]["content"]
        assert not examples["context"].str.contains("@example.com").any()
    production = home.models / "chats" / read_aliases(home.models / "chats")["production"]
    card = read_card(production)
    assert card["data"]["train_examples"] == examples.filter(pl.col("split") == "train").height
    assert card["test_evaluation"]["samples"][0]["prompt"].startswith("my ")  # the last user turn is the prompt
