"""Reports for people: markdown tables, training curves, the confusion matrix and the reliability diagram."""

from __future__ import annotations

import csv
import io
import math


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


def _png(figure) -> bytes:
    from matplotlib import pyplot

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
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
    return _png(figure)


def reliability_png(bins: list[dict[str, float]]) -> bytes:
    """Reliability diagram: accuracy against mean confidence per confidence bin, beside perfect calibration."""
    figure, axes = _figure(5, 5)
    filled = [b for b in bins if b["count"]]
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    axes.bar(
        [b["low"] for b in filled],
        [b["accuracy"] for b in filled],
        width=[b["high"] - b["low"] for b in filled],
        align="edge",
        alpha=0.6,
        edgecolor="black",
        label="accuracy in the bin",
    )
    axes.plot([b["confidence"] for b in filled], [b["accuracy"] for b in filled], marker="o", label="mean confidence")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("confidence")
    axes.set_ylabel("accuracy")
    axes.legend(loc="upper left")
    return _png(figure)


def read_metrics_csv_text(text: str) -> list[dict[str, float]]:
    """Lightning's CSVLogger rows, numbers as floats (empty cells left out)."""
    return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(io.StringIO(text))]


def training_curves_png(rows: list[dict[str, float]]) -> bytes:
    """Train loss and learning rate per step, and the val metrics per epoch."""
    figure, (losses, validation) = _figure(11, 4, columns=2)
    steps = [(r["step"], r["train_loss"]) for r in rows if "train_loss" in r]
    losses.plot([s for s, _ in steps], [v for _, v in steps], label="train loss", color="tab:blue")
    val_loss = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
    losses.plot([s for s, _ in val_loss], [v for _, v in val_loss], marker="o", label="val loss", color="tab:orange")
    losses.set_xlabel("step")
    losses.set_ylabel("loss")
    rate_keys = sorted({key for row in rows for key in row if key.startswith("lr-")})  # lr-AdamW/pg1: the body
    rates = [(r["step"], r[rate_keys[0]]) for r in rows if rate_keys and rate_keys[0] in r]
    if rates:
        rate_axes = losses.twinx()
        rate_axes.plot([s for s, _ in rates], [v for _, v in rates], color="grey", linestyle=":", label="learning rate")
        rate_axes.set_ylabel("learning rate")
    losses.legend(loc="upper center")
    names = sorted({key for row in rows for key in row if key.startswith("val_") and key != "val_loss"})
    shown = [name for name in ("val_accuracy", "val_macro_f1") if name in names] or names  # a classifier's two
    for name in shown:
        points = [(r["epoch"], r[name]) for r in rows if name in r]
        validation.plot([e for e, _ in points], [v for _, v in points], marker="o", label=name.removeprefix("val_"))
    validation.xaxis.get_major_locator().set_params(integer=True)
    validation.set_xlabel("epoch")
    validation.set_ylabel("val")
    if all(0 <= row[name] <= 1 for row in rows for name in shown if name in row):
        validation.set_ylim(0, 1.02)
    validation.legend(loc="lower right")
    if not all(math.isfinite(v) for _, v in steps):
        losses.set_title("the loss became NaN or infinite")
    return _png(figure)


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
    return _png(figure)
