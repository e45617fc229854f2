"""The dependency floors: installed without constraints.txt, no version with a published advisory is allowed."""

import re
import tomllib
from pathlib import Path

from packaging.version import Version

FIXED_IN = {"torch": "2.6", "transformers": "5.5", "pyarrow": "23.0.1", "starlette": "1.0.1", "h11": "0.16"}


def test_every_dependency_with_a_published_advisory_has_its_floor_at_the_fixed_version() -> None:
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    floors = {}
    for requirement in project["dependencies"]:
        found = re.match(r"([A-Za-z0-9_.\-\[\]]+?)\s*>=\s*([0-9][0-9.]*)", requirement)
        if found:
            floors[found[1].split("[")[0].lower()] = Version(found[2])
    for package, fixed in FIXED_IN.items():
        assert package in floors, f"{package} has no floor in pyproject.toml"
        assert floors[package] >= Version(fixed), f"{package} >= {floors[package]} allows versions before {fixed}"
