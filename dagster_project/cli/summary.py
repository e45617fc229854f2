"""What `refinery run` and `refinery status` say about a version: as a dict (`--json`) and as text."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from assets.storage.catalog import catalog_entry
from assets.storage.delta import Lake
from assets.storage.home import RefineryHome
from assets.storage.version_manifest import dataset_name_of
from contracts.tables import LABEL_ISSUES, MODEL_CANDIDATES, QUARANTINE
from trainers.registry import ModelRegistry, models_of, read_card, registry_name

METRIC_NAMES = (  # a classifier's, then a causal LM's (beside its base's zero-shot ROUGE-L), an adapted or tuned one's
    "accuracy",
    "macro_precision",
    "macro_recall",
    "macro_f1",
    "rouge_l",
    "base_rouge_l",
    "gain_over_base",
    "exact_match",
    "perplexity",
    "base_perplexity",  # an adapted causal LM's, beside its base's on the same documents
    "perplexity_gain",
    "preference_accuracy",  # a preference-tuned model's, beside its base's on the same pairs
    "base_preference_accuracy",
    "reward_margin",
)


def version_summary(home: RefineryHome, version: str) -> dict[str, object]:
    """Records read, kept, quarantined by stage and rule, the models trained for it and the deployed one."""
    dataset = dataset_name_of(home.landing / version)
    lake, registry = Lake(home.lake_uri), ModelRegistry(str(home.models), registry_name(dataset))
    entry = catalog_entry(lake, version) or {}
    quarantined = []
    if lake.exists(QUARANTINE):
        counts = lake.scan(QUARANTINE, [version]).group_by("stage", "rule").len().sort("len", descending=True)
        quarantined = [{"stage": s, "rule": r, "count": n} for s, r, n in counts.collect().iter_rows()]
    label_issues = {}
    if lake.exists(LABEL_ISSUES):
        counts = lake.scan(LABEL_ISSUES, [version]).group_by("kind").len().collect()
        label_issues = dict(counts.iter_rows())
    models = []
    for folder in models_of(registry.model_root, version):  # every model version trained for it, oldest first
        metrics = read_card(folder).get("test_evaluation", {}).get("metrics") or {}
        models.append({"folder": str(folder), "test_metrics": {k: metrics[k] for k in METRIC_NAMES if k in metrics}})
    production = registry.aliases().get("production")
    trained = read_card(Path(models[-1]["folder"])) if models else {}
    return {
        "version": version,
        "dataset": dataset,
        "records_read": entry.get("records_read"),
        "training_examples": entry.get("rows_kept"),
        "quarantined": entry.get("quarantined_total"),
        "files": json.loads(entry["files"]) if entry.get("files") else [],
        "quarantined_by_rule": quarantined,
        "label_issues": label_issues,
        "models": models,
        "deployed_model": str(registry.version_folder(production)) if production else None,
        "selection": selection_summary(lake, version, trained),
    }


def selection_summary(lake: Lake, version: str, trained_card: dict) -> dict | None:
    """The selection matrix's choice, its best rows, and whether the version's latest fine-tune trained it."""
    if not lake.exists(MODEL_CANDIDATES):
        return None
    matrix = lake.scan(MODEL_CANDIDATES, [version]).collect()
    if matrix.is_empty():
        return None
    chosen = matrix.filter(pl.col("chosen"))["candidate"].to_list()
    top = matrix.sort("val_macro_f1", descending=True).head(3)
    return {
        "chosen": chosen[0] if chosen else None,
        "top": top.select("candidate", "val_macro_f1", "p99_ms_batch1").to_dicts(),
        "measured": matrix["candidate"].to_list(),
        "trained_chosen": "selection" in trained_card.get("lineage", {}) if trained_card else None,
    }


def selection_lines(selection: dict) -> list[str]:
    """What the matrix chose, its best rows, and why the fine-tune trained something else when it did."""
    rows = ", ".join(
        f"{r['candidate']} F1 {r['val_macro_f1']:.4f} p99 {r['p99_ms_batch1']:.3g} ms" for r in selection["top"]
    )
    lines = [f"  candidates          chose {selection['chosen'] or 'none'} (val; best: {rows})"]
    if selection["trained_chosen"] is True:
        lines.append(f"  trained             the chosen candidate, {selection['chosen']} (from_selection)")
    elif selection["trained_chosen"] is False and selection["chosen"]:
        unmeasured = not any(name.startswith("encoder-finetune") for name in selection["measured"])
        why = "; the matrix measured no full fine-tune, which is what it trains" if unmeasured else ""
        lines.append(
            f"  trained             fine_tuned_model's own settings, not {selection['chosen']}: "
            f"from_selection is off{why} (fine_tuned_model: {{from_selection: true}} trains the choice)"
        )
    return lines


def render_summary(summary: dict, home: RefineryHome) -> str:
    """The summary as the lines a person reads."""
    lines = [f"dataset version {summary['version']} (dataset {summary['dataset']})"]
    for label, key in (
        ("records read", "records_read"),
        ("training examples", "training_examples"),
        ("quarantined", "quarantined"),
    ):
        if summary[key] is not None:
            lines.append(f"  {label:<19} {summary[key]}")
    for item in summary["files"]:
        counts = f"{item['records']} records, {item['rejected']} rejected"
        lines.append(f"    file  {item['file']}  {counts}  sha256 {item['sha256'][:12]}")
    for row in summary["quarantined_by_rule"]:
        lines.append(f"    quarantined  {row['stage']:<9} {row['rule']:<22} {row['count']}")
    if summary.get("label_issues"):
        found = ", ".join(
            f"{count} {kind.replace('_', ' ')}s" for kind, count in sorted(summary["label_issues"].items())
        )
        lines.append(
            f"  label issues        {found} (review: refinery review export --dataset-version {summary['version']})"
        )
    for model in summary["models"]:
        shown = ", ".join(f"{k} {v:.3f}" for k, v in model["test_metrics"].items())
        lines.append(f"  model               {model['folder']}")
        lines.append(f"  test metrics        {shown or 'not evaluated yet'}")
    if summary.get("selection"):
        lines += selection_lines(summary["selection"])
    if summary["deployed_model"]:
        lines.append(f"  deployed model      {summary['deployed_model']} (production)")
    lines.append(f"  open the UI         REFINERY_HOME={home.root} make ui   ->  http://127.0.0.1:3000")
    return "\n".join(lines)
