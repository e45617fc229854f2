"""A Refinery process prints no library notices a user cannot act on, unless REFINERY_VERBOSE is set."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

NOISY = """
import warnings
from trainers.console import quiet_libraries
quiet_libraries()
import tqdm
from lightning.pytorch.utilities.rank_zero import rank_zero_info
for _ in tqdm.tqdm(range(3), desc="Loading weights"):
    pass
rank_zero_info("GPU available: False, used: False")
warnings.warn("Parameter `include_sources` of function `AssetSelection.all` is currently in beta", UserWarning)
warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated", DeprecationWarning)
warnings.warn("The number of training batches (4) is smaller than the logging interval Trainer(log_every_n_steps=10).")
warnings.warn("a warning about the user's own data", UserWarning)
print("refinery: step 10/20")
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_library_notices_are_silenced_and_refinerys_own_lines_kept(verbose: bool) -> None:
    environment = {k: v for k, v in os.environ.items() if k not in ("REFINERY_VERBOSE", "TQDM_DISABLE")}
    if verbose:
        environment["REFINERY_VERBOSE"] = "1"
    ran = subprocess.run(
        [sys.executable, "-W", "default", "-c", NOISY], capture_output=True, text=True, env=environment, check=True
    )
    printed = ran.stdout + ran.stderr
    assert "refinery: step 10/20" in printed and "about the user's own data" in printed
    for notice in ("Loading weights", "GPU available", "currently in beta", "LeafSpec", "logging interval"):
        assert (notice in printed) is verbose, (notice, printed)
