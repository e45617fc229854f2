"""The Dagster UI in headless Chromium against a real `dagster dev` (webserver and daemon).

A person's paths: the lineage graph, a materialization launched by clicking, its metadata and checks,
and the landing sensor turning a new drop into a run by itself. Screenshots land beside the server's
log; `make screenshots` writes them to docs/ui/, where the README shows them.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from assets.datasets.declaration import declaration_yaml
from assets.demo.tickets import DEMO_DATASET, write_demo_drop
from assets.storage.home import RefineryHome
from tests.dagster_ui import CHROMIUM, PROJECT_ROOT, DagsterDev, dagster_dev

pytestmark = [
    pytest.mark.ui,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: apt-get install chromium"),
]

SCREENSHOTS_VARIABLE = "REFINERY_SCREENSHOTS"  # a folder; `make screenshots` sets docs/ui
VERSION = "ui-v1"
SENSOR_VERSION = "ui-v2"
ASSETS = [
    "raw_documents",
    "clean_documents",
    "tokenized_documents",
    "training_examples",
    "model_candidates",
    "hyperparameter_search",
    "fine_tuned_model",
    "model_evaluation",
    "deployed_model",
    "batch_predictions",
    "batch_generations",
    "model_monitoring",
]


class Ui:
    """A browser page on the running `dagster dev`, with the moves a person makes."""

    def __init__(self, server: DagsterDev, page) -> None:
        self.server, self.page, self.welcomed = server, page, False

    def open(self, path: str) -> None:
        self.page.goto(self.server.url + path)
        self.page.wait_for_load_state("networkidle")
        if not self.welcomed:  # a new instance greets its first visitor with a sign-up dialog; skip it once
            self.page.get_by_role("button", name="Skip").click()
            self.welcomed = True

    def text(self) -> str:
        return self.page.inner_text("body")

    def poll(self, look, timeout: float, failure, reload_every: float = 5.0):
        """Reload the page until `look()` returns something; save failure.png and fail after `timeout`."""
        deadline = time.monotonic() + timeout
        while (found := look()) is None:
            if time.monotonic() > deadline:
                self.page.screenshot(path=str(self.server.log.with_name("failure.png")))
                raise AssertionError(f"{failure()} after {timeout:.0f}s")
            self.page.wait_for_timeout(reload_every * 1000)
            self.page.reload()
            self.page.wait_for_load_state("networkidle")
        return found

    def wait_for_text(self, pattern: str, timeout: float) -> str:
        """Reload until the page's text matches `pattern`; return the text."""

        def look() -> str | None:
            text = self.text()
            return text if re.search(pattern, text) else None

        return self.poll(look, timeout, lambda: f"no {pattern!r} on {self.page.url}:\n{self.text()[-3000:]}")

    def wait_for_run(self, version: str, target: str, timeout: float) -> str:
        """Watch the Runs page until the run of `target` for `version` ends; return its status."""
        self.open("/runs")

        def look() -> str | None:
            rows = self.page.locator("[class*='RunsFeedRow_row']")  # one per run in the Runs table
            row = rows.filter(has_text=f"partition: {version}").filter(has_text=target)
            status = re.search(r"\b(Success|Failure|Canceled)\b", row.first.inner_text()) if row.count() else None
            return status.group(1) if status else None

        return self.poll(look, timeout, lambda: f"the {target} run of {version} did not end")

    def screenshot(self, name: str) -> Path:
        folder = Path(os.environ.get(SCREENSHOTS_VARIABLE) or self.server.log.with_name("screenshots"))
        folder = folder if folder.is_absolute() else PROJECT_ROOT / folder
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def materialize(self, asset: str, version: str) -> None:
        """Open the asset, click Materialize, tick the version in the partition picker and launch one run."""
        self.open(f"/assets/{asset}")
        self.page.get_by_role("button", name="Materialize…").first.click()
        self.page.get_by_text("Select a partition or create one").click()
        self.page.keyboard.type(version)
        self.page.get_by_role("checkbox", name=version, exact=True).or_(
            self.page.get_by_text(version, exact=True)
        ).first.click()
        self.page.get_by_text(f"Launch runs to materialize {asset}").click()  # closes the picker
        self.launch_one_run()

    def launch_one_run(self) -> None:
        self.page.get_by_text("1 partition", exact=True).wait_for()
        self.page.get_by_role("button", name="Launch 1 run").click()
        self.page.get_by_text("Launch runs to materialize").wait_for(state="hidden")


def shows(label: str, name: str) -> bool:
    """Whether a graph node's label is the name, whole or shortened in the middle ("tokeniz…_documents")."""
    head, dots, tail = label.strip().partition("…")
    return label.strip() == name or bool(dots and head and name.startswith(head) and name.endswith(tail))


def section(text: str, start: str, end: str) -> set[str]:
    """The lines of the page text between two headings."""
    body = text.split(start, 1)[1].split(end, 1)[0]
    return {line.strip() for line in body.splitlines() if line.strip() and line.strip() != "–"}


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    from playwright.sync_api import sync_playwright

    root = tmp_path_factory.mktemp("ui")
    home = RefineryHome(root / "refinery").ensure()
    declared = replace(DEMO_DATASET, training={"max_epochs": 2})  # the sensor's run trains as the dataset says
    (home.datasets / "tickets.yaml").write_text(declaration_yaml(declared))  # dropped folders belong to it
    write_demo_drop(home.landing / VERSION, rows=400, seed=11)  # a drop by hand; the UI registers it
    with dagster_dev(home, root / "dagster-dev.log") as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True)
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        page.set_default_timeout(30_000)
        try:
            yield Ui(server, page)
        finally:
            browser.close()


def expected_lineage(home: RefineryHome) -> dict[str, tuple[set[str], set[str]]]:
    """Each asset's upstream and downstream asset names, from the definitions the UI loads."""
    from dagster_project.definitions import build_definitions

    graph = build_definitions(home).resolve_asset_graph()
    return {
        key.to_user_string(): (
            {parent.to_user_string() for parent in graph.get(key).parent_keys},
            {child.to_user_string() for child in graph.get(key).child_keys},
        )
        for key in graph.get_all_asset_keys()
    }


def test_the_lineage_graph_shows_every_asset_with_its_upstream_and_downstream_edges(ui: Ui) -> None:
    ui.open("/asset-groups")
    ui.page.get_by_text("Global asset lineage").click()
    ui.page.keyboard.press("Alt+KeyE")  # the graph's "Expand all groups" shortcut
    ui.page.get_by_text("deployed_model").first.wait_for()
    ui.page.wait_for_timeout(1500)  # let the layout settle before the screenshot
    ui.screenshot("asset-graph")
    labels = set(ui.text().splitlines())
    assert [asset for asset in ASSETS if not any(shows(label, asset) for label in labels)] == []
    lineage = expected_lineage(ui.server.home)
    assert sorted(lineage) == sorted(ASSETS)
    for asset, (upstream, downstream) in lineage.items():
        ui.open(f"/assets/{asset}")
        text = ui.wait_for_text("Downstream assets", timeout=30)
        assert section(text, "Upstream assets", "Downstream assets") == upstream, asset
        assert section(text, "Downstream assets", "Definition") == downstream, asset


def metadata_value(ui: Ui, key: str) -> str:
    """The value of one metadata entry in the asset page's metadata table (key, timestamp, value)."""
    row = ui.page.locator("tr", has=ui.page.get_by_text(key, exact=True)).first
    return row.inner_text().split("\t")[-1].strip()


def test_a_person_adds_a_version_by_clicking_then_the_landing_sensor_runs_a_dropped_folder(ui: Ui) -> None:
    """One journey, in order: the partition dialog expects the home to hold no other version yet."""
    add_a_version_and_materialize_it_by_clicking(ui)
    the_asset_page_shows_row_and_quarantine_counts_and_the_delta_version(ui)
    the_validation_checks_show_their_results(ui)
    the_landing_sensor_turns_a_new_drop_into_a_run_that_succeeds(ui)
    the_training_examples_page_shows_the_suspected_label_errors(ui)
    the_model_pages_show_the_training_curves_and_the_evaluation_pictures(ui)
    the_selection_matrix_shows_its_table_and_picture(ui)
    a_second_dataset_shows_beside_the_first(ui)


def add_a_version_and_materialize_it_by_clicking(ui: Ui) -> None:
    ui.open("/assets/raw_documents")
    ui.page.get_by_role("button", name="Materialize…").first.click()
    ui.page.get_by_text("Add a partition").click()
    ui.page.get_by_text("Partition name").wait_for()
    ui.page.keyboard.type(VERSION)  # the name field has the focus
    ui.page.get_by_role("button", name="Save", exact=True).click()
    ui.launch_one_run()
    assert ui.wait_for_run(VERSION, "raw_documents", timeout=180) == "Success", ui.server.log_tail()


def the_asset_page_shows_row_and_quarantine_counts_and_the_delta_version(ui: Ui) -> None:
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    ui.open("/assets/raw_documents")
    ui.wait_for_text("records_read", timeout=60)
    lake = ui.server.home.lake
    raw = DeltaTable(str(lake / "raw_documents"))
    rows = raw.to_pyarrow_dataset().count_rows(filter=pc.field("dataset_version") == VERSION)
    quarantine = DeltaTable(str(lake / "quarantine")).to_pyarrow_dataset()
    quarantined = quarantine.count_rows(filter=pc.field("dataset_version") == VERSION)
    assert int(metadata_value(ui, "records_read")) == rows + quarantined
    assert int(metadata_value(ui, "quarantined")) == quarantined > 0
    assert int(metadata_value(ui, "delta_version")) == raw.version()
    assert f"Row count\n{rows}" in ui.text()
    ui.screenshot("materialization")


def the_validation_checks_show_their_results(ui: Ui) -> None:
    from assets.checks import check_name, dataset_rules

    ui.materialize("clean_documents", VERSION)
    assert ui.wait_for_run(VERSION, "clean_documents", timeout=300) == "Success", ui.server.log_tail()
    ui.open("/assets/clean_documents")
    ui.wait_for_text("unseen_labels", timeout=60)
    assert metadata_value(ui, "dataset") == DEMO_DATASET.name
    ui.open("/assets/clean_documents?view=checks")
    text = ui.wait_for_text(r"(Passed|Failed)", timeout=240)
    names = [check_name(rule) for rule in dataset_rules("clean_documents")]
    assert names
    for name in names:
        assert re.search(rf"{name}[\s\S]*?(Passed|Failed|Warning)", text), f"{name} has no result:\n{text[-3000:]}"
    ui.screenshot("checks")


def the_landing_sensor_turns_a_new_drop_into_a_run_that_succeeds(ui: Ui) -> None:
    ui.open("/locations/refinery/sensors/landing_sensor")
    ui.page.locator("label:has(input[type=checkbox])").or_(ui.page.locator("input[type=checkbox]")).first.click()
    ui.page.wait_for_timeout(2000)
    drop = ui.server.home.landing / SENSOR_VERSION
    write_demo_drop(drop, rows=800, seed=12)
    (drop / "_SUCCESS").touch()
    assert ui.wait_for_run(SENSOR_VERSION, "refinery_pipeline", timeout=900) == "Success", ui.server.log_tail()
    ui.open("/locations/refinery/sensors/landing_sensor")
    ui.screenshot("sensor-run")


def the_training_examples_page_shows_the_suspected_label_errors(ui: Ui) -> None:
    import polars as pl

    issues = pl.read_delta(str(ui.server.home.lake / "label_issues"))
    suspects = issues.filter(
        (pl.col("dataset_version") == SENSOR_VERSION) & (pl.col("kind") == "suspected_label_error")
    )
    assert suspects.height > 0  # the demo plants mislabelled tickets
    ui.open("/assets/training_examples")
    ui.wait_for_text("top_label_issues", timeout=60)
    assert int(metadata_value(ui, "label_suspects")) == suspects.height
    row = ui.page.locator("tr", has=ui.page.get_by_text("top_label_issues", exact=True)).first
    table = row.locator("table").first  # the UI draws a table's rows inline, under its schema
    table.wait_for(timeout=30_000)
    shown = table.inner_text()
    top = suspects.sort("rank").row(0, named=True)
    assert "suspected_label_error" in shown and top["suggested_label"] in shown and top["given_label"] in shown
    ui.screenshot("label-issues")


def the_model_pages_show_the_training_curves_and_the_evaluation_pictures(ui: Ui) -> None:
    from trainers.registry import models_of

    (model,) = models_of(ui.server.home.models / DEMO_DATASET.name, SENSOR_VERSION)
    assert {"metrics.csv", "training_curves.png", "confusion_matrix.png", "reliability.png"} <= {
        path.name for path in model.iterdir()
    }
    ui.open("/assets/fine_tuned_model")
    ui.wait_for_text("training_curves", timeout=60)
    assert model.name in ui.text()
    ui.open("/assets/model_evaluation")
    text = ui.wait_for_text("reliability_diagram", timeout=60)
    assert "confusion_matrix" in text and "per_class" in text
    row = ui.page.locator("tr", has=ui.page.get_by_text("reliability_diagram", exact=True)).first
    show = row.get_by_text(re.compile("show markdown", re.IGNORECASE)).first
    assert show.count(), f"no [Show Markdown] in the row: {row.inner_html()[:2000]}"
    show.click()  # the picture, rendered from its data URI
    picture = ui.page.get_by_role("img", name="reliability diagram")
    picture.wait_for(timeout=30_000)
    assert picture.evaluate("image => image.naturalWidth") > 100
    ui.page.wait_for_timeout(1000)  # let the dialog finish fading in before the screenshot
    ui.screenshot("reliability-diagram")


def the_selection_matrix_shows_its_table_and_picture(ui: Ui) -> None:
    ui.open("/assets/model_candidates")
    text = ui.wait_for_text("quality_against_latency", timeout=60)
    assert "matrix" in text and "pareto_front" in text
    chosen = metadata_value(ui, "chosen")
    assert chosen in ("tfidf-logreg", "encoder-frozen-logreg")
    row = ui.page.locator("tr", has=ui.page.get_by_text("quality_against_latency", exact=True)).first
    row.get_by_text(re.compile("show markdown", re.IGNORECASE)).first.click()
    picture = ui.page.get_by_role("img", name="quality against latency")
    picture.wait_for(timeout=30_000)
    assert picture.evaluate("image => image.naturalWidth") > 100
    ui.page.wait_for_timeout(1000)
    ui.screenshot("selection-matrix")
    ui.page.keyboard.press("Escape")


def a_second_dataset_shows_beside_the_first(ui: Ui) -> None:
    """Another dataset, declared and registered from the command line, appears in the same UI under its name."""
    import subprocess
    import sys

    from assets.datasets.declaration import declaration_yaml
    from tests.dagster_project.test_two_datasets import ORDERS, write_orders

    home = ui.server.home
    (home.datasets / "orders.yaml").write_text(declaration_yaml(ORDERS))
    write_orders(home.root / "orders-drop", 120)
    environment = {**os.environ, "REFINERY_HOME": str(home.root)}

    def refinery(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "dagster_project.cli", *args],
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    registered = refinery("ingest", str(home.root / "orders-drop"), "--dataset", "orders")
    version = registered.split()[3]
    assert version.startswith("orders-")
    refinery("run", "--dataset-version", version, "--select", "raw_documents,clean_documents")
    ui.open("/assets/clean_documents")
    ui.wait_for_text("unseen_labels", timeout=60)
    assert metadata_value(ui, "dataset") == "orders"
    ui.open("/assets/clean_documents?view=partitions")
    text = ui.wait_for_text(re.escape(version), timeout=60)
    assert VERSION in text
    ui.page.get_by_text(version, exact=True).first.click()  # its materialization, with the dataset it belongs to
    ui.page.locator("tr", has=ui.page.get_by_text("dataset", exact=True)).first.wait_for(timeout=30_000)
    ui.screenshot("two-datasets")
