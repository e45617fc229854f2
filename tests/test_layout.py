"""The shape of the code: imports run one way, no cycles, small functions and modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dagster_project", "assets", "service", "trainers", "rules", "recipe", "contracts")
MAX_FUNCTION_LINES = 80  # as the formatter lays it out; branching is bounded by ruff's C901
MAX_MODULE_LINES = 450
MAX_FORMATTER_EXCEPTIONS = 20  # `# fmt: skip` / `# fmt: off`, each on an aligned data table


def _pop_component(stack: list[str], on_stack: set[str], root: str) -> set[str]:
    """Pop the strongly connected component whose root is `root` off Tarjan's stack."""
    component = set()
    while True:
        member = stack.pop()
        on_stack.discard(member)
        component.add(member)
        if member == root:
            return component


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components of a directed graph (iterative)."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)

    for root in graph:
        if root in index:
            continue
        visit(root)
        work = [(root, iter(graph[root]))]
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    components.append(_pop_component(stack, on_stack, node))
            elif child not in index:
                visit(child)
                work.append((child, iter(graph.get(child, ()))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return components


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports, at any depth of the code (functions included)."""
    graph = grimp.build_graph(*PACKAGES)
    return {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}


def package_of(module: str) -> str:
    """`assets.text.dedup` -> `assets.text`; `assets.cleaning` -> `assets.cleaning`; `trainers.x` -> `trainers`."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "assets" else parts[0]


def test_the_import_contracts_hold() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:]


def test_no_module_import_cycle() -> None:
    cycles = [c for c in strongly_connected(import_graph()) if len(c) > 1]
    assert not cycles, f"modules that import each other: {cycles}"


def test_no_package_import_cycle() -> None:
    packages: dict[str, set[str]] = {}
    for module, imported in import_graph().items():
        source = package_of(module)
        packages.setdefault(source, set()).update(package_of(m) for m in imported if package_of(m) != source)
    cycles = [c for c in strongly_connected(packages) if len(c) > 1]
    assert not cycles, f"packages that import each other: {cycles}"


def test_functions_and_modules_stay_small() -> None:
    too_long = []
    for package in (*PACKAGES, "tests", "benchmarks"):
        for path in sorted((ROOT / package).rglob("*.py")):
            source = path.read_text()
            if len(source.splitlines()) > MAX_MODULE_LINES:
                too_long.append(f"{path.relative_to(ROOT)}: {len(source.splitlines())} lines")
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    start = min([d.lineno for d in node.decorator_list] + [node.lineno])
                    if node.end_lineno - start + 1 > MAX_FUNCTION_LINES:
                        too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not too_long, too_long


def test_the_cycle_finder_finds_a_cycle_and_nothing_else() -> None:
    components = strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
    assert sorted(map(sorted, components)) == [["a", "b", "c"], ["d"]]


def test_the_formatter_wins_with_at_most_a_few_aligned_tables_kept_by_hand() -> None:
    markers = [
        f"{path.relative_to(ROOT)}:{number}"
        for package in (*PACKAGES, "tests", "benchmarks")
        for path in sorted((ROOT / package).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if line.rstrip().endswith("# fmt: skip") or line.strip() == "# fmt: off"
    ]
    assert len(markers) <= MAX_FORMATTER_EXCEPTIONS, markers
