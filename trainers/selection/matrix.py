"""The selection matrix: each candidate fitted on the same train split and measured on val for quality and compute."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainers.selection.candidates import CandidateData

LATENCY_REPEATS = 30


@dataclass(frozen=True)
class SelectionLimits:
    """What a chosen candidate may cost; None is no limit."""

    max_p99_ms_batch1: float | None = None
    max_peak_memory_mb: float | None = None
    max_size_mb: float | None = None


class PeakMemory:
    """The process's peak resident memory while the block runs, sampled every 20 ms (torch allocates natively)."""

    def __enter__(self) -> PeakMemory:
        self.peak, self._stop = _rss_bytes(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_bytes())

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def quality(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, macro precision, recall and F1, and expected calibration error (15 bins)."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    predicted = probabilities.argmax(1)
    precision, recall, f1, _ = precision_recall_fscore_support(labels, predicted, average="macro", zero_division=0)
    confidence = probabilities.max(1)
    correct = predicted == labels
    edges = np.linspace(0, 1, 16)
    bins = np.clip(np.digitize(confidence, edges[1:-1]), 0, 14)
    ece = sum(
        abs(confidence[bins == b].mean() - correct[bins == b].mean()) * (bins == b).mean()
        for b in range(15)
        if (bins == b).any()
    )
    return {
        "val_accuracy": float(accuracy_score(labels, predicted)),
        "val_macro_precision": float(precision),
        "val_macro_recall": float(recall),
        "val_macro_f1": float(f1),
        "val_ece": float(ece),
    }


def latency_ms(predict: Callable[[CandidateData], np.ndarray], data: CandidateData, batch: int) -> tuple[float, float]:
    """p50 and p99 milliseconds of one prediction call on `batch` texts."""
    timings = []
    for repeat in range(LATENCY_REPEATS):
        start = (repeat * batch) % max(len(data.texts) - batch, 1)
        piece = CandidateData(
            data.texts[start : start + batch], data.analyzed[start : start + batch], data.labels[start : start + batch]
        )
        began = time.perf_counter()
        predict(piece)
        timings.append((time.perf_counter() - began) * 1000)
    return float(np.percentile(timings, 50)), float(np.percentile(timings, 99))


def measure_candidate(candidate, train: CandidateData, val: CandidateData, classes: int, folder: Path) -> dict:
    """Fit one candidate and measure it: val quality, fit time and throughput, peak memory, size, latency."""
    with PeakMemory() as memory:
        began = time.perf_counter()
        candidate.fit(train, classes, val)
        fit_seconds = time.perf_counter() - began
    row = {"candidate": candidate.name, **quality(candidate.predict_proba(val), val.labels)}
    saved = candidate.save(folder / candidate.name)
    size = sum(path.stat().st_size for path in saved.rglob("*") if path.is_file())
    row.update(
        {
            "fit_seconds": round(fit_seconds, 3),
            "fit_samples_per_s": round(len(train.texts) / fit_seconds, 1),
            "peak_memory_mb": round(memory.peak / 2**20, 1),
            "parameters": candidate.parameters(),
            "size_mb": round(size / 2**20, 2),
        }
    )
    int8 = candidate.quantized() if hasattr(candidate, "quantized") else None
    for batch in (1, 32):
        p50, p99 = latency_ms(candidate.predict_proba, val, batch)
        row[f"p50_ms_batch{batch}"], row[f"p99_ms_batch{batch}"] = round(p50, 2), round(p99, 2)
        int8_p99 = latency_ms(int8, val, batch)[1] if int8 else None  # None: the candidate has no int8 form
        row[f"p99_ms_batch{batch}_int8"] = round(int8_p99, 2) if int8_p99 is not None else None
    return row


def pareto_front(rows: list[dict]) -> set[str]:
    """Candidates no other beats on both val macro F1 and batch-1 p99 latency."""
    front = set()
    for row in rows:
        dominated = any(
            other["val_macro_f1"] >= row["val_macro_f1"]
            and other["p99_ms_batch1"] <= row["p99_ms_batch1"]
            and (other["val_macro_f1"], other["p99_ms_batch1"]) != (row["val_macro_f1"], row["p99_ms_batch1"])
            for other in rows
        )
        if not dominated:
            front.add(row["candidate"])
    return front


def choose_candidate(rows: list[dict], limits: SelectionLimits) -> tuple[str | None, str]:
    """The best val macro F1 among candidates within the limits, and why."""
    checks = (
        ("p99_ms_batch1", limits.max_p99_ms_batch1),
        ("peak_memory_mb", limits.max_peak_memory_mb),
        ("size_mb", limits.max_size_mb),
    )
    allowed = [r for r in rows if all(limit is None or r[key] <= limit for key, limit in checks)]
    if not allowed:
        return None, "no candidate is within the limits"
    best = max(allowed, key=lambda r: (r["val_macro_f1"], -r["p99_ms_batch1"]))
    left_out = len(rows) - len(allowed)
    return best["candidate"], f"best val macro F1 {best['val_macro_f1']:.4f} of {len(allowed)} within limits" + (
        f" ({left_out} over a limit)" if left_out else ""
    )


MIN_QUALITY_SPAN = 0.05  # a closer race is drawn on at least this much of the F1 axis, not magnified into a gulf
MATRIX_TITLE = "Candidates: val macro F1 against p99 latency"


def quality_limits(values: list[float]) -> tuple[float, float]:
    """The F1 axis's bounds: the values with a margin, spanning at least MIN_QUALITY_SPAN, kept within 0 to 1."""
    centre = (min(values) + max(values)) / 2
    half = max((max(values) - min(values)) * 1.3, MIN_QUALITY_SPAN) / 2
    low, high = centre - half, centre + half
    shift = max(0.0, -low) - max(0.0, high - 1.0)  # slide the window back inside [0, 1]
    return max(0.0, low + shift), min(1.0, high + shift)


def plot_matrix(rows: list[dict], path: Path) -> Path:
    """Val macro F1 against batch-1 p99 latency, the Pareto front joined and marked; each point numbered and named
    in the key below the axes, so that close points neither hide nor overprint each other's labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator

    front = pareto_front(rows)
    figure, axes = plt.subplots(figsize=(7, 4.5 + 0.12 * len(rows)), dpi=110)
    key = [Line2D([], [], color="tab:blue", linewidth=1, label="Pareto front")]
    for number, row in enumerate(rows, start=1):
        on_front = row["candidate"] in front
        marker, color = ("o", "tab:blue") if on_front else ("x", "tab:gray")
        axes.scatter(row["p99_ms_batch1"], row["val_macro_f1"], s=60, marker=marker, color=color)
        axes.annotate(
            str(number),
            (row["p99_ms_batch1"], row["val_macro_f1"]),
            fontsize=8,
            xytext=(5, 4),
            textcoords="offset points",
            annotation_clip=False,
        )
        named = f"{number} {row['candidate']}: F1 {row['val_macro_f1']:.4f}, p99 {row['p99_ms_batch1']:.3g} ms"
        key.append(Line2D([], [], marker=marker, color=color, linestyle="", label=named))
    points = sorted((r["p99_ms_batch1"], r["val_macro_f1"]) for r in rows if r["candidate"] in front)
    axes.plot([p[0] for p in points], [p[1] for p in points], color="tab:blue", linewidth=1)
    axes.set_xscale("log")
    axes.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axes.xaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))
    axes.margins(x=0.2)
    axes.set_ylim(*quality_limits([r["val_macro_f1"] for r in rows]))
    axes.set_xlabel("p99 latency, batch of 1 (ms, log scale)")
    axes.set_ylabel("val macro F1")
    axes.set_title(MATRIX_TITLE)
    axes.legend(handles=key, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, fontsize=8, frameon=False)
    figure.tight_layout()
    figure.savefig(path, metadata={"Title": MATRIX_TITLE})
    plt.close(figure)
    return path
