"""The end-to-end fixture: one home per test module, with version v1 run through the whole graph."""

import dagster as dg
import pytest

from assets.storage.home import RefineryHome
from tests.conftest import build_tiny_model
from tests.dagster_project.pipeline import Pipeline
from trainers.registry import read_aliases


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("e2e")
    model = build_tiny_model(root / "tiny-bert")
    home = RefineryHome(root / "home").ensure()
    with dg.instance_for_test(temp_dir=str(home.dagster)) as instance:
        built = Pipeline(home, instance, model)
        built.register_demo("v1", rows=400, seed=1)
        built.first_result = built.run("v1")
        built.first_aliases = read_aliases(built.models)
        yield built
