"""When retraining can learn something new: a dataset version the production model has not seen."""

from __future__ import annotations


def retraining_version(registered: list[str], production_card: dict | None) -> tuple[str | None, str]:
    """The dataset version to retrain (the newest; its model learns from every version up to it), or None and why."""
    if not registered:
        return None, "no dataset version to retrain on"
    newest = registered[-1]
    seen = set((production_card or {}).get("dataset_versions") or [])
    if newest in seen:
        return None, (
            f"nothing new: the production model already learned from every version up to {newest!r}; "
            "retraining on the same data would change nothing (add data, or post feedback labels)"
        )
    return newest, f"{newest!r} is newer than the data of the production model"
