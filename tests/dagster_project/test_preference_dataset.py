"""A preference dataset (a prompt with a chosen and a rejected answer) goes from JSONL in TRL's shapes through
cleaning (both answers masked), its own rules, splits that keep a prompt together and a DPO run to a gated,
deployed causal LM."""

from __future__ import annotations

import json
import random
from pathlib import Path

import dagster as dg
import polars as pl
import yaml

from assets.storage.home import RefineryHome
from dagster_project.jobs import PIPELINE_JOB
from tests.dagster_project.pipeline import Pipeline
from tests.dagster_project.test_cli import _refinery
from trainers.registry import read_aliases, read_card

DEVICES = ["printer", "laptop", "badge", "router", "monitor", "phone", "scanner", "headset", "keyboard", "tablet"]
FAULTS = ["keeps beeping", "will not start", "shows a red light", "is very slow", "loses its connection"]
STEPS = ["unplug it for a minute", "update its driver", "check the cable", "restart it twice", "sign in again"]


def pair_records(rows: int, seed: int = 5) -> list[dict]:
    """Polite answers chosen over curt ones, in TRL's three shapes, with a prompt asked twice and planted defects."""
    rng = random.Random(seed)
    records = []
    for n in range(rows):
        device, fault, step = rng.choice(DEVICES), rng.choice(FAULTS), rng.choice(STEPS)
        prompt = f"my {device} {fault} since ticket {1000 + n // 2}, what should i do?"  # every prompt asked twice
        chosen = f"thank you for telling us. please {step}, and we will follow up today."
        rejected = f"{step}. {'not our problem.' if n % 2 else 'figure it out.'}"
        if n % 3 == 0:
            records.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
        elif n % 3 == 1:  # conversational, explicit prompt
            records.append(
                {
                    "prompt": [{"role": "user", "content": prompt}],
                    "chosen": [{"role": "assistant", "content": chosen}],
                    "rejected": [{"role": "assistant", "content": rejected}],
                }
            )
        else:  # conversational, implicit prompt: each answer is the whole conversation
            question = {"role": "user", "content": prompt}
            records.append(
                {
                    "chosen": [question, {"role": "assistant", "content": chosen}],
                    "rejected": [question, {"role": "assistant", "content": rejected}],
                }
            )
    records[3]["chosen"] = "thank you. please write to anna.smith@example.com and she will fix it today."
    records[6]["rejected"] = records[6]["chosen"]  # teaches nothing
    records[9]["rejected"] = "   "
    records[12]["chosen"] = 42  # a number is no answer
    records.append(dict(records[0]))  # the same triple twice
    return records


def declare(home: RefineryHome, base: Path) -> None:
    declaration = {
        "name": "tone",
        "tasks": [{"name": "tone", "kind": "preference"}],
        "training": {
            "model_name_or_path": str(base),
            "max_epochs": 2,
            "learning_rate": 5e-3,
            "batch_size": 8,
            "max_length": 64,
        },
    }
    (home.datasets / "tone.yaml").write_text(yaml.safe_dump(declaration))


def test_a_preference_dataset_goes_from_trl_shaped_jsonl_to_a_deployed_preference_tuned_model(
    tmp_path: Path, tiny_causal_lm: Path
) -> None:
    base = tiny_causal_lm
    home = RefineryHome(tmp_path / "home").ensure()
    declare(home, base)
    drop = tmp_path / "drop"
    drop.mkdir()
    records = pair_records(200)
    (drop / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    gate = {"min_accuracy": 0.0, "min_macro_f1": 0.0, "max_regression": 1.0, "min_preference_accuracy": 0.6}
    with dg.instance_for_test(temp_dir=str(home.dagster)) as instance:
        pipeline = Pipeline(home, instance, base)
        pipeline.register(drop, "tone-v1", "tone")
        result = pipeline.defs.resolve_job_def(PIPELINE_JOB).execute_in_process(
            partition_key="tone-v1",
            instance=instance,
            raise_on_error=False,
            run_config={"ops": {"model_evaluation": {"config": gate}}},
        )
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        clean = pipeline.table("clean_documents", "tone-v1")
        quarantine = pipeline.table("quarantine", "tone-v1")
        examples = pipeline.table("training_examples", "tone-v1")

    leaked = clean.filter(pl.col("text").str.contains("ticket 1001,") & pl.col("chosen").str.contains("write to"))
    assert leaked["chosen"].to_list() == ["thank you. please write to <EMAIL> and she will fix it today."]
    rules = dict(quarantine.group_by("rule").len().iter_rows())
    assert rules.get("answers_differ") == 1 and rules.get("preference_shape") == 1 and rules.get("duplicate") == 1
    assert rules.get("rejected_not_blank", 0) + rules.get("rejected_length", 0) == 1
    shape = quarantine.filter(pl.col("rule") == "preference_shape")
    assert shape["source_row"].to_list() == [13] and "both must be text" in shape["reason"][0]
    assert examples.height + quarantine.height == len(records)  # nothing lost
    assert examples["chosen"].null_count() == 0 and examples["rejected"].null_count() == 0
    splits_per_prompt = examples.group_by("text").agg(pl.col("split").n_unique())
    assert splits_per_prompt["split"].max() == 1  # a prompt asked twice stays in one split

    models = home.models / "tone"
    folder = models / read_aliases(models)["production"]
    card = read_card(folder)
    assert card["model_kind"] == "preference" and card["dataset_versions"] == ["tone-v1"]
    assert (folder / "training_curves.png").read_bytes().startswith(b"\x89PNG")  # loss, rewards, accuracy
    assert "train_reward_margin" in (folder / "metrics.csv").read_text().splitlines()[0]
    metrics = card["test_evaluation"]["metrics"]
    assert metrics["preference_accuracy"] >= 0.6 and card["evaluation_gate"]["passed"]


def test_init_recognises_conversational_pairs_and_declares_a_preference_dataset_whose_rules_run(tmp_path: Path) -> None:
    conversational = [r for r in pair_records(240) if isinstance(r.get("prompt"), list)]  # one shape per file
    conversational[2]["rejected"] = conversational[2]["chosen"]
    conversational[5]["chosen"] = [
        {"role": "assistant", "content": "thank you; write to anna.smith@example.com today."}
    ]
    source = tmp_path / "tone.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in conversational))
    home = tmp_path / "home"
    init = _refinery(home, "init", str(source), "--base-model", str(tmp_path / "some-base"))
    assert init.returncode == 0, init.stderr
    assert "format:        preference (columns 'prompt' (prompt), 'chosen' and 'rejected'" in init.stdout
    assert "malformed" not in init.stdout and "PII:           prompt none; chosen email 1; rejected none" in init.stdout
    declared = yaml.safe_load((home / "datasets" / "tone.yaml").read_text())
    assert declared["tasks"] == [{"name": "preference", "kind": "preference"}]
    assert declared["source"] == {
        "text_column": "prompt",
        "label_column": None,
        "chosen_column": "chosen",
        "rejected_column": "rejected",
    }
    data_assets = "raw_documents,clean_documents,tokenized_documents,training_examples"
    run = _refinery(home, "run", "--select", data_assets, "--json")
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout[run.stdout.index("{") :])
    rules = {row["rule"]: row["count"] for row in summary["quarantined_by_rule"]}
    assert rules == {"answers_differ": 1, "duplicate": 1} or rules == {"answers_differ": 1}, rules
    assert summary["training_examples"] + summary["quarantined"] == summary["records_read"] == len(conversational)


def test_a_preference_run_starts_from_the_sft_dataset_s_production_model_and_its_answers_are_guarded(
    tmp_path: Path, tiny_causal_lm: Path
) -> None:
    from tests.dagster_project.test_generation_dataset import declare as declare_answers
    from tests.dagster_project.test_generation_dataset import write_answers

    base = tiny_causal_lm
    home = RefineryHome(tmp_path / "home").ensure()
    declare_answers(home, base)
    declare(home, base)
    tone = yaml.safe_load((home.datasets / "tone.yaml").read_text())
    tone["training"] = {**tone["training"], "model_name_or_path": "answers@production", "max_epochs": 1}
    (home.datasets / "tone.yaml").write_text(yaml.safe_dump(tone))
    write_answers(tmp_path / "answers", 160)
    (tmp_path / "pairs").mkdir()
    (tmp_path / "pairs" / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pair_records(120)))
    gate = {"min_accuracy": 0.0, "min_macro_f1": 0.0, "max_regression": 1.0, "min_rouge_l": 0.0}
    with dg.instance_for_test(temp_dir=str(home.dagster)) as instance:
        pipeline = Pipeline(home, instance, base)
        job = pipeline.defs.resolve_job_def(PIPELINE_JOB)
        for drop, version, dataset in (("answers", "answers-v1", "answers"), ("pairs", "tone-v1", "tone")):
            pipeline.register(tmp_path / drop, version, dataset)
            config = {"ops": {"model_evaluation": {"config": {**gate, "min_preference_accuracy": 0.0}}}}
            result = job.execute_in_process(
                partition_key=version, instance=instance, raise_on_error=False, run_config=config
            )
            assert result.success, [e.message for e in result.all_events if e.is_failure]
    sft = read_aliases(home.models / "answers")["production"]
    card = read_card(home.models / "tone" / read_aliases(home.models / "tone")["production"])
    origin = card["lineage"]["base_from"]
    assert origin["reference"] == "answers@production" and origin["model_version"] == sft
    assert origin["model_kind"] == "causal_lm" and origin["dataset_versions"] == ["answers-v1"]
    assert card["base_model"] == str(home.models / "answers" / sft)
    metrics = card["test_evaluation"]["metrics"]
    assert 0.0 <= metrics["sft_rouge_l"] <= 1.0 and 0.0 <= metrics["base_sft_rouge_l"] <= 1.0
