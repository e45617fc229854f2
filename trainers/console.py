"""What Refinery's processes print: the notices of libraries that a user cannot act on are silenced (progress bars
of weight loading, Lightning's hardware lines and tips, warnings about the libraries' own internals), unless
REFINERY_VERBOSE is set. Refinery's own progress lines, and every other warning, are kept."""

from __future__ import annotations

import logging
import os
import warnings

VERBOSE = "REFINERY_VERBOSE"
LIBRARY_WARNINGS = (
    r".* is currently in (beta|preview)",  # Dagster, on parameters Refinery uses on purpose
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",  # inside Lightning's _pytree
    r"`is_gradient_checkpointing` is deprecated",  # inside peft, on transformers 5
    r"The number of training batches \(\d+\) is smaller than the logging interval",  # Refinery logs its own lines
)
LIBRARY_INFO_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


def quiet_libraries() -> None:
    """Silence the libraries' notices in this process and the processes it starts (through the environment)."""
    if os.environ.get(VERBOSE):
        return
    os.environ.setdefault("TQDM_DISABLE", "1")  # "Loading weights", "Converting and de-quantizing GGUF tensors"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for pattern in LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    for name in LIBRARY_INFO_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
