"""Reports for people: markdown tables, training curves, the confusion matrix and the reliability diagram."""

from __future__ import annotations

import csv
import io
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def confusion_markdown(labels: list[str], matrix: list[list[int]]) -> str:
    """The confusion matrix as a markdown table (rows: true label, columns: predicted)."""
    lines = ["| true \\ predicted | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for label, row in zip(labels, matrix, strict=True):
        lines.append(f"| **{label}** | " + " | ".join(str(n) for n in row) + " |")
    return "\n".join(lines)


def _figure(width: float, height: float, columns: int = 1):
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    from matplotlib import pyplot

    return pyplot.subplots(1, columns, figsize=(width, height), dpi=100)


def _png(figure, title: str) -> bytes:
    """The figure as PNG bytes under its title, which the file's metadata also holds."""
    from matplotlib import pyplot

    buffer = io.BytesIO()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(buffer, format="png", metadata={"Title": title})
    pyplot.close(figure)
    return buffer.getvalue()


def confusion_png(matrix: list[list[int]], labels: list[str] | None = None) -> bytes:
    """The row-normalised confusion matrix as a labelled heatmap; counts in the cells while they fit."""
    import numpy as np

    counts = np.asarray(matrix, dtype=float)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = len(matrix)
    labels = labels or [str(i) for i in range(size)]
    side = min(4 + 0.35 * size, 40)
    figure, axes = _figure(side, side)
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(size), labels, rotation=90, fontsize=max(4, 10 - size // 15))
    axes.set_yticks(range(size), labels, fontsize=max(4, 10 - size // 15))
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    if size <= 30:
        for (row, column), count in np.ndenumerate(counts):
            if count:
                colour = "white" if shares[row, column] > 0.5 else "black"
                axes.text(column, row, int(count), ha="center", va="center", fontsize=7, color=colour)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the true label")
    return _png(figure, f"Confusion matrix of the test split ({int(counts.sum())} texts)")


def bins_calibration_error(bins: list[dict[str, float]]) -> float:
    """ECE: the bins' gaps between accuracy and mean confidence, weighted by their share of the texts."""
    total = sum(b["count"] for b in bins)
    return sum(b["count"] / total * abs(b["accuracy"] - b["confidence"]) for b in bins if b["count"]) if total else 0.0


def reliability_png(bins: list[dict[str, float]]) -> bytes:
    """Reliability diagram: each confidence bin's accuracy (a bar, its count above it) and its mean confidence (a
    point on the diagonal's scale), beside perfect calibration; the ECE in the title."""
    figure, axes = _figure(5.5, 5.5)
    filled = [b for b in bins if b["count"]]
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    bars = axes.bar(
        [b["low"] for b in filled],
        [b["accuracy"] for b in filled],
        width=[b["high"] - b["low"] for b in filled],
        align="edge",
        alpha=0.6,
        edgecolor="black",
        label="accuracy of the bin's texts",
    )
    axes.bar_label(bars, labels=[f"n={int(b['count'])}" for b in filled], fontsize=7, padding=2, rotation=90)
    axes.plot(
        [b["confidence"] for b in filled],
        [b["accuracy"] for b in filled],
        marker="o",
        linestyle="",
        color="tab:red",
        label="accuracy at the bin's mean confidence",
    )
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.18)  # room above a full bar for its count
    axes.set_xlabel("confidence of the predicted label")
    axes.set_ylabel("accuracy (share correct)")
    axes.legend(loc="upper left", fontsize=8)
    total = int(sum(b["count"] for b in filled))
    return _png(figure, f"Reliability on the test split: ECE {bins_calibration_error(bins):.3f}, {total} texts")


def read_metrics_csv_text(text: str) -> list[dict[str, float]]:
    """Lightning's CSVLogger rows, numbers as floats (empty cells left out)."""
    return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(io.StringIO(text))]


def training_curves_png(rows: list[dict[str, float]]) -> bytes:
    """Train and val loss and the learning rate per step; the val metrics per epoch, the best epoch marked."""
    figure, (losses, validation) = _figure(12, 4.5, columns=2)
    diverged = plot_losses(losses, rows)
    plot_validation(validation, rows)
    title = "Training curves" + (": the loss became NaN or infinite" if diverged else "")
    return _png(figure, title)


def plot_losses(axes: Axes, rows: list[dict[str, float]]) -> bool:
    """Losses against the step, the learning rate on a second axis, one legend for all; True if the loss diverged."""
    smoothed = not any("train_ce" in r for r in rows)  # train_ce: the train cross-entropy as val's is computed
    train_key = "train_loss" if smoothed else "train_ce"
    steps, train = series(rows, train_key)
    label = "train loss (as optimised)" if smoothed else "train cross-entropy (no smoothing, like val)"
    handles = axes.plot(steps, train, label=label, color="tab:blue", alpha=0.8)
    handles += axes.plot(*series(rows, "val_loss"), marker="o", label="val loss (each epoch's end)", color="tab:orange")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("loss (cross-entropy, nats)")
    axes.set_title("Loss")
    rate_keys = sorted({key for row in rows for key in row if key.startswith("lr-")})  # lr-AdamW/pg1: the body
    if rate_keys:
        rate_axes = axes.twinx()
        handles += rate_axes.plot(*series(rows, rate_keys[0]), color="grey", linestyle=":", label="learning rate")
        rate_axes.set_ylabel("learning rate")
        rate_axes.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    axes.legend(handles=handles, loc="upper right", fontsize=8)
    return not all(math.isfinite(v) for v in train)


def best_epoch(rows: list[dict[str, float]]) -> tuple[str, float, float] | None:
    """The metric the export keeps the best epoch of (val macro F1 up, else val loss down), and that epoch."""
    for name, sign in (("val_macro_f1", -1), ("val_loss", 1)):
        points = [(r[name], r["epoch"]) for r in rows if name in r and "epoch" in r]
        if points:  # of equal values the earliest epoch, as the export keeps only a strict improvement
            value, epoch = min(points, key=lambda point: (sign * point[0], point[1]))
            return name, epoch, value
    return None


def plot_validation(axes: Axes, rows: list[dict[str, float]]) -> None:
    """The val metrics against the epoch, on an axis fitted to their range; the best epoch marked."""
    names = sorted({key for row in rows for key in row if key.startswith("val_") and key != "val_loss"})
    shown = [name for name in ("val_accuracy", "val_macro_f1") if name in names] or names or ["val_loss"]
    for name in shown:
        points = [(r["epoch"], r[name]) for r in rows if name in r and "epoch" in r]
        axes.plot([e for e, _ in points], [v for _, v in points], marker="o", label=name.removeprefix("val_"))
    best = best_epoch(rows)
    if best is not None:
        name, epoch, value = best
        axes.axvline(epoch, color="tab:green", linestyle="--", linewidth=1)
        last = epoch >= max(r["epoch"] for r in rows if "epoch" in r)  # the text goes left of a last-epoch line
        axes.annotate(
            f"best epoch {int(epoch)}: {name.removeprefix('val_')} {value:.4f}",
            (epoch, value),
            xytext=(-6 if last else 6, -14),
            textcoords="offset points",
            ha="right" if last else "left",
            fontsize=8,
            color="tab:green",
        )
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.margins(x=0.1, y=0.15)
    axes.set_xlabel("epoch")
    axes.set_ylabel("val metric" if shown != ["val_loss"] else "val loss (nats)")
    axes.set_title("Validation")
    axes.legend(loc="best", fontsize=8)


def series(rows: list[dict[str, float]], key: str) -> tuple[list[float], list[float]]:
    """One logged metric against the step: the rows that hold it."""
    points = [(row["step"], row[key]) for row in rows if key in row and "step" in row]
    return [x for x, _ in points], [y for _, y in points]


def preference_curves_png(rows: list[dict[str, float]]) -> bytes:
    """A preference run's train loss per step; its chosen and rejected rewards and their margin per step; and its
    preference accuracy, train per step and held out at each epoch's end (0 to 1)."""
    figure, (losses, rewards, accuracy) = _figure(15, 4, columns=3)
    losses.plot(*series(rows, "train_loss"), color="tab:blue", label="train loss")
    losses.set_xlabel("step")
    losses.set_ylabel("loss")
    losses.legend(loc="upper right")
    for key, color in (("chosen_reward", "tab:green"), ("rejected_reward", "tab:red"), ("reward_margin", "black")):
        rewards.plot(*series(rows, f"train_{key}"), color=color, label=key.replace("_", " "))
    rewards.axhline(0, color="grey", linewidth=0.5)
    rewards.set_xlabel("step")
    rewards.set_ylabel("reward (beta x log-probability change)")
    rewards.legend(loc="upper left")
    accuracy.plot(*series(rows, "train_preference_accuracy"), color="tab:blue", alpha=0.4, label="train (per step)")
    held_out = series(rows, "val_preference_accuracy")  # measured at each epoch's end, drawn at its step
    accuracy.plot(*held_out, color="tab:orange", marker="o", label="held out (each epoch's end)")
    accuracy.set_xlabel("step")
    accuracy.set_ylabel("preference accuracy")
    accuracy.set_ylim(0, 1.02)
    accuracy.legend(loc="lower right")
    return _png(figure, "Preference tuning curves")
