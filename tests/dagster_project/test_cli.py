"""The `refinery` command as a user runs it: a subprocess with REFINERY_HOME set."""

import json
import os
import subprocess
import sys
from pathlib import Path

from dagster_project.cli import DEMO_VERSION, build_parser, handler


def _refinery(home: Path, *args: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "REFINERY_HOME": str(home)}
    environment.pop("DAGSTER_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "dagster_project.cli", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ingest_registers_a_version_that_status_lists(tmp_path: Path) -> None:
    data = tmp_path / "export.csv"
    data.write_text("body,queue\nmy vpn keeps dropping,vpn_access\n")
    home = tmp_path / "home"
    result = _refinery(home, "ingest", str(data), "--version", "v1", "--text-column", "body", "--label-column", "queue")
    assert result.returncode == 0, result.stderr
    assert "registered dataset version v1" in result.stdout
    landed = home / "landing" / "v1"
    assert (landed / "export.csv").read_text() == data.read_text()
    assert (landed / "_SUCCESS").exists()
    assert "text_column: body" in (landed / "_source.yaml").read_text()
    assert (home / "dagster" / "dagster.yaml").is_file()
    status = _refinery(home, "status")
    assert status.returncode == 0 and "dataset version v1" in status.stdout


def test_ingest_without_version_names_it_by_content(tmp_path: Path) -> None:
    data = tmp_path / "tickets.csv"
    data.write_text("text,label\nprinter jam,printer_issue\n")
    first = _refinery(tmp_path / "a", "ingest", str(data))
    second = _refinery(tmp_path / "b", "ingest", str(data))
    assert first.returncode == second.returncode == 0
    assert first.stdout.split()[3] == second.stdout.split()[3]
    assert first.stdout.split()[3].startswith("tickets-")


def test_errors_are_one_clear_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("text,label\nx,y\n")
    home = tmp_path / "home"
    assert _refinery(home, "ingest", str(data), "--version", "v1").returncode == 0
    cases = [
        (("ingest", str(data), "--version", "v1"), "dataset version 'v1' is already registered"),
        (("ingest", str(data), "--version", "v2"), "d.csv: same content as dataset version 'v1'; nothing to register"),
        (("ingest", str(tmp_path / "missing.csv")), "missing.csv: no such file or folder"),
        (("ingest", str(data), "--version", "bad name"), "invalid dataset version 'bad name'"),
        (("run", "--version", "v9"), "unknown dataset version 'v9'"),
        (("run", "--version", "v1", "--select", "no_such_asset"), "bad --select 'no_such_asset'"),
        (("predict", "hello"), "no model has the alias 'production' yet"),
        (("ingest", str(data), "--version", "v2\n"), "invalid dataset version 'v2\\n'"),
        (("serve", "--host", "0.0.0.0"), "refusing to serve on 0.0.0.0 without a token"),
        (("ui", "--host", "0.0.0.0"), "refusing to start the Dagster UI on 0.0.0.0: it has no login"),
    ]
    for args, message in cases:
        result = _refinery(home, *args)
        assert result.returncode == 1, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("refinery: error: ") and message in lines[0], (args, lines)


def test_the_program_says_its_version_and_the_old_version_flag_still_names_a_dataset_version() -> None:
    result = subprocess.run([sys.executable, "-m", "dagster_project.cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("refinery ")
    parser = build_parser()
    assert parser.parse_args(["run", "--version", "v1"]).version == "v1"
    assert parser.parse_args(["run", "--dataset-version", "v1"]).version == "v1"


def test_every_documented_command_exists() -> None:
    parser = build_parser()
    for command in (
        ["demo"],
        ["ingest", "x"],
        ["run", "--version", "v"],
        ["status"],
        ["predict", "t"],
        ["serve"],
        ["ui"],
    ):
        assert parser.parse_args(command).handler
    assert parser.parse_args(["demo"]).version == DEMO_VERSION


def test_a_version_with_every_record_rejected_fails_naming_the_rules_counts_and_samples(tmp_path: Path) -> None:
    data = tmp_path / "short.csv"
    data.write_text("text,label\n" + "".join(f"x{n % 10},label_{n % 3}\n" for n in range(40)))  # every text too short
    home = tmp_path / "home"
    assert _refinery(home, "ingest", str(data), "--version", "v1").returncode == 0
    result = _refinery(home, "run", "--version", "v1", "--select", "raw_documents,clean_documents")
    assert result.returncode != 0
    assert "check_max_rejected_rate of clean_documents failed: 40 of 40 records (100.0%) were quarantined" in (
        result.stderr
    )
    assert "top rules: text_length 40" in result.stderr
    assert result.stderr.count("short.csv row ") == 3


def write_orders_csv(path: Path, rows: int, labels: tuple[str, ...], seed: int) -> None:
    """A CSV with its own column names and labels that share nothing with the demo's."""
    import csv
    import random

    rng = random.Random(seed)
    words = {label: [f"{label[:4]}{n}" for n in range(25)] for label in labels}
    common = ["please", "help", "my", "the", "order", "today", "now", "again", "with"]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ref", "customer message", "disposition"])
        for n in range(rows):
            label = labels[n % len(labels)]
            text = rng.sample(words[label], 4) + rng.sample(common, 3)
            rng.shuffle(text)
            writer.writerow([f"R{n}", " ".join(text), label])


def test_init_then_run_takes_any_csv_to_a_deployed_model_with_no_file_edited(tmp_path: Path) -> None:
    data = tmp_path / "Orders Export.csv"
    write_orders_csv(data, 240, ("refund", "shipping", "warranty"), seed=1)
    home = tmp_path / "home"
    init = _refinery(home, "init", str(data))
    assert init.returncode == 0, init.stderr
    assert "text column:    customer message" in init.stdout and "label column:   disposition" in init.stdout
    assert (home / "datasets" / "orders-export.yaml").is_file()
    run = _refinery(home, "run", "--config", '{"ops": {"fine_tuned_model": {"config": {"max_epochs": 1}}}}')
    assert run.returncode == 0, run.stderr[-3000:]
    assert "quarantined         0" in run.stdout and "(production)" in run.stdout
    predicted = _refinery(home, "predict", "refu3 refu7 please refu11 help")
    assert predicted.returncode == 0 and predicted.stdout.split()[0] in ("refund", "shipping", "warranty")
    texts = tmp_path / "texts.csv"
    texts.write_text("id,text\n1,refu3 refu7 please\n2,ship4 ship9 today\n")
    written = _refinery(home, "predict", "-f", str(texts), "-o", str(tmp_path / "labelled.jsonl"))
    assert written.returncode == 0, written.stderr
    rows = [json.loads(line) for line in (tmp_path / "labelled.jsonl").read_text().splitlines()]
    assert [row["text"] for row in rows] == ["refu3 refu7 please", "ship4 ship9 today"]
    status = json.loads(_refinery(home, "status", "--json").stdout)
    (version,) = status["versions"]
    assert version["dataset"] == "orders-export" and version["deployed_model"].startswith(str(home / "models"))
    checked = json.loads(_refinery(home, "rules", "check", "--json").stdout)
    assert checked["datasets"]["orders-export"]["tasks"] == ["disposition"]


def test_a_later_version_with_new_labels_quarantines_them_naming_the_labels(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    write_orders_csv(first, 60, ("refund", "shipping"), seed=1)
    write_orders_csv(second, 60, ("refund", "shipping", "refund", "fraud"), seed=2)  # a quarter new: under 30%
    columns = ("--text-column", "customer message", "--label-column", "disposition")
    assert _refinery(home, "ingest", str(first), "--version", "v1", *columns).returncode == 0
    assert _refinery(home, "ingest", str(second), "--version", "v2", *columns).returncode == 0
    select = ("--select", "raw_documents,clean_documents")
    assert _refinery(home, "run", "--version", "v1", *select).returncode == 0  # v1 freezes the label set
    second_run = _refinery(home, "run", "--version", "v2", *select)
    assert second_run.returncode == 0, second_run.stderr[-2000:]
    assert "quarantined  clean     label_in_label_set     15" in second_run.stdout


def test_add_labels_grows_the_production_model_from_five_examples_through_the_gate(tmp_path: Path) -> None:
    data = tmp_path / "orders.csv"
    write_orders_csv(data, 240, ("refund", "shipping", "warranty"), seed=2)
    home = tmp_path / "home"
    assert _refinery(home, "init", str(data)).returncode == 0
    config = '{"ops": {"fine_tuned_model": {"config": {"max_epochs": 1, "prototype_head": true}}}}'
    run = _refinery(home, "run", "--config", config)
    assert run.returncode == 0, run.stderr[-3000:]
    examples = tmp_path / "exchange.jsonl"
    texts = [
        "exch1 exch4 exch7 swap please",
        "exch2 exch9 swap it now",
        "exch3 exch5 exch8 swap the order",
        "exch6 exch0 swap again",
        "exch1 exch2 exch3 swap today",
    ]
    examples.write_text("".join(json.dumps({"text": t, "label": "exchange"}) + "\n" for t in texts))
    added = _refinery(home, "add-labels", str(examples))
    assert added.returncode == 0, added.stderr[-3000:]
    assert "with exchange (5 examples)" in added.stdout and "production is" in added.stdout
    predicted = _refinery(home, "predict", "--json", "exch4 exch8 swap please", "refu3 refu7 please refu11 help")
    assert [json.loads(line)["label"] for line in predicted.stdout.splitlines()] == ["exchange", "refund"]


def test_status_ingest_and_models_start_without_the_asset_graph_torch_or_scikit_learn() -> None:
    heavy = ("torch", "lightning", "sklearn", "dagster_project.definitions")
    for command in ("status", "ingest", "models"):
        module = f"dagster_project.cli.{handler(command).split(':')[0].rsplit('.', 1)[1]}"
        probe = f"import sys, {module}; print(','.join(m for m in {heavy!r} if m in sys.modules))"
        loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
        assert loaded.strip() == "", (command, loaded)
