"""Continued pre-training: a pretraining dataset (documents only) goes through cleaning and its rules to a causal
LM adapted to the documents, gated on held-out perplexity against its base; a fine-tune that starts from the
adapted model carries the chain base -> adapted -> fine-tuned in its card."""

from __future__ import annotations

import random
from pathlib import Path

import dagster as dg
import polars as pl
import yaml

from assets.storage.home import RefineryHome
from dagster_project.jobs import PIPELINE_JOB
from tests.dagster_project.pipeline import Pipeline
from tests.dagster_project.test_cli import _refinery
from tests.dagster_project.test_generation_dataset import declare as declare_answers
from tests.dagster_project.test_generation_dataset import write_answers
from trainers.registry import read_aliases, read_card

PARTS = ["printer", "router", "badge reader", "docking station", "headset", "scanner", "monitor", "laptop"]
SYMPTOMS = ["drops its connection", "shows a red light", "will not power on", "prints blank pages", "runs hot"]
REMEDIES = ["reseat the cable", "update the firmware", "restart the device", "replace the battery", "clear the queue"]


def write_manuals(folder: Path, documents: int, seed: int = 11) -> None:
    """Service notes in the help desk's own phrasing, one planted with an e-mail, one too short to learn from."""
    rng = random.Random(seed)
    notes = []
    for n in range(documents):
        sentences = [
            f"when the {rng.choice(PARTS)} {rng.choice(SYMPTOMS)}, the technician should {rng.choice(REMEDIES)} first."
            for _ in range(3)
        ]
        notes.append({"note_id": str(n), "body": " ".join(sentences) + f" this is service note {n}."})
    notes[0]["body"] += " escalate to anna.smith@example.com when it happens twice."
    notes[1]["body"] = "see above"
    folder.mkdir(parents=True)
    pl.DataFrame(notes).write_csv(folder / "notes.csv")


def test_continued_pre_training_lowers_held_out_perplexity_and_a_fine_tune_on_top_reads_the_chain(
    tmp_path: Path, tiny_causal_lm: Path
) -> None:
    base = tiny_causal_lm
    home = RefineryHome(tmp_path / "home").ensure()
    manuals = {
        "name": "manuals",
        "source": {"text_column": "body", "id_column": "note_id"},
        "tasks": [{"name": "domain", "kind": "pretraining"}],
        "training": {"model_name_or_path": str(base), "max_epochs": 3, "learning_rate": 5e-3, "max_length": 64},
    }
    (home.datasets / "manuals.yaml").write_text(yaml.safe_dump(manuals))
    declare_answers(home, base)
    answers = yaml.safe_load((home.datasets / "answers.yaml").read_text())
    answers["training"] = {**answers["training"], "model_name_or_path": "manuals@production", "max_epochs": 1}
    (home.datasets / "answers.yaml").write_text(yaml.safe_dump(answers))
    write_manuals(tmp_path / "notes", 120)
    write_answers(tmp_path / "answers", 120)
    gate = {"min_accuracy": 0.0, "min_macro_f1": 0.0, "max_regression": 1.0, "min_rouge_l": 0.0}
    with dg.instance_for_test(temp_dir=str(home.dagster)) as instance:
        pipeline = Pipeline(home, instance, base)
        job = pipeline.defs.resolve_job_def(PIPELINE_JOB)
        for drop, version, dataset in (("notes", "manuals-v1", "manuals"), ("answers", "answers-v1", "answers")):
            pipeline.register(tmp_path / drop, version, dataset)
            result = job.execute_in_process(
                partition_key=version,
                instance=instance,
                raise_on_error=False,
                run_config={"ops": {"model_evaluation": {"config": {**gate, "min_gain_over_base": -1.0}}}},
            )
            assert result.success, [e.message for e in result.all_events if e.is_failure]
        clean = pipeline.table("clean_documents", "manuals-v1")
        quarantine = pipeline.table("quarantine", "manuals-v1")

    assert clean.filter(pl.col("source_id") == "0")["text"].str.contains("<EMAIL>").all()
    short = quarantine.filter(pl.col("record").str.contains("see above"))
    assert short["rule"].to_list() == ["document_length"] and quarantine.height == 1
    adapted_version = read_aliases(home.models / "manuals")["production"]
    adapted = read_card(home.models / "manuals" / adapted_version)
    metrics = adapted["test_evaluation"]["metrics"]
    assert adapted["model_kind"] == "domain_lm" and adapted["base_model"] == str(base)
    assert metrics["perplexity"] < 0.7 * metrics["base_perplexity"] and adapted["evaluation_gate"]["passed"]
    tuned = read_card(home.models / "answers" / read_aliases(home.models / "answers")["production"])
    chain = tuned["lineage"]["base_from"]
    assert chain["model_version"] == adapted_version and chain["model_kind"] == "domain_lm"
    assert chain["dataset_versions"] == ["manuals-v1"] and tuned["base_model"] == str(
        home.models / "manuals" / adapted_version
    )


def test_init_declares_documents_as_a_pretraining_dataset_whose_rules_run(tmp_path: Path) -> None:
    write_manuals(tmp_path / "notes", 60)
    home = tmp_path / "home"
    init = _refinery(
        home, "init", str(tmp_path / "notes" / "notes.csv"), "--format", "documents", "--text-column", "body"
    )
    assert init.returncode == 0, init.stderr
    assert "format:        documents (column 'body' (documents))" in init.stdout and "document length:" in init.stdout
    declared = yaml.safe_load((home / "datasets" / "notes.yaml").read_text())
    assert declared["tasks"] == [{"name": "domain", "kind": "pretraining"}]
    assert declared["source"] == {"text_column": "body", "label_column": None}
    check = declared["rules"]["clean_documents"]["columns"]["text"]["checks"][0]
    assert check["name"] == "document_length" and check["str_length"]["min"] == 20
    run = _refinery(home, "run", "--select", "raw_documents,clean_documents,tokenized_documents,training_examples")
    assert run.returncode == 0, run.stderr
    assert "document_length" in run.stdout and "training examples   59" in run.stdout  # "see above" is too short
