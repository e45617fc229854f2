"""`python -m benchmarks.cli [--home PATH] [--repeats 5]`: how long the commands a person types take to answer.

Each command runs as a user runs it, a new `refinery` process on a demo home (run `make demo` first), and the
median wall time of `--repeats` runs is reported: `status` (every version's summary), `models` and `--help`,
and `predict` of one ticket, which includes loading the deployed classifier. Targets: status, models and help
1.5 s or less; predict's own start-up likewise, the model's load aside.
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


def refinery_seconds(home: Path, arguments: list[str]) -> float:
    """Wall seconds of one `refinery` process, which must succeed."""
    environment = {**os.environ, "REFINERY_HOME": str(home)}
    start = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "dagster_project.cli", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    seconds = time.perf_counter() - start
    if completed.returncode != 0:
        raise SystemExit(f"refinery {' '.join(arguments)} failed:\n{completed.stderr[-2000:]}")
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
    print(result_line(**medians))


if __name__ == "__main__":
    main()
