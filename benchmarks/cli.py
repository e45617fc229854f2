"""`python -m benchmarks.cli [--home PATH] [--repeats 5]`: how long the commands a person types take to answer.

Each command runs as a user runs it, a new `refinery` process on a demo home (run `make demo` first), and the
median wall time of `--repeats` runs is reported: `status` (every version's summary), `models` and `--help`,
and `predict` of one ticket, which includes loading the deployed classifier. `model_load` is a bare interpreter
that only loads that classifier and answers the same ticket, so `predict_overhead_s` (predict less model_load) is
what the command itself adds. Targets: status, models and help 1.5 s or less; predict's overhead likewise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import result_line

PROJECT_ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    "help": ["--help"],
    "status": ["status"],
    "models": ["models", "--dataset", "tickets"],
    "predict": ["predict", "--dataset", "tickets", "my vpn keeps dropping"],
}


MODEL_LOAD = (
    "import sys\n"
    "from pathlib import Path\n"
    "from trainers.kinds import load_classifier\n"
    "from trainers.registry import resolve_alias\n"
    "load_classifier(resolve_alias(Path(sys.argv[1]))).predict([sys.argv[2]])\n"
)


def refinery_seconds(home: Path, arguments: list[str]) -> float:
    """Wall seconds of one `refinery` process, which must succeed."""
    return process_seconds(home, ["-m", "dagster_project.cli", *arguments])


def model_load_seconds(home: Path) -> float:
    """Wall seconds of an interpreter that only loads the deployed ticket classifier and answers one ticket."""
    return process_seconds(home, ["-c", MODEL_LOAD, str(home / "models" / "tickets"), COMMANDS["predict"][-1]])


def process_seconds(home: Path, arguments: list[str]) -> float:
    """Wall seconds of one Python process on `home`, which must succeed."""
    environment = {**os.environ, "REFINERY_HOME": str(home)}
    start = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, *arguments],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    seconds = time.perf_counter() - start
    if completed.returncode != 0:
        raise SystemExit(f"python {' '.join(arguments)} failed:\n{completed.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("REFINERY_HOME", PROJECT_ROOT / ".refinery")))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not (args.home / "models" / "tickets").is_dir():
        sys.exit(f"{args.home}: no demo models; run `make demo` first")
    medians = {}
    for name, arguments in COMMANDS.items():
        runs = [refinery_seconds(args.home, arguments) for _ in range(args.repeats)]
        medians[f"{name}_s"] = statistics.median(runs)
        print(f"{name:8s} median {medians[f'{name}_s']:.2f} s  (runs: {', '.join(f'{r:.2f}' for r in runs)})")
    loads = [model_load_seconds(args.home) for _ in range(args.repeats)]
    medians["model_load_s"] = statistics.median(loads)
    medians["predict_overhead_s"] = medians["predict_s"] - medians["model_load_s"]
    print(f"model load median {medians['model_load_s']:.2f} s  (runs: {', '.join(f'{r:.2f}' for r in loads)})")
    print(result_line(**medians))


if __name__ == "__main__":
    main()
