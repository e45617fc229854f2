"""Storage options for a Delta lake that may live on object storage: safe concurrent writers on S3."""

from __future__ import annotations

import os
from collections.abc import Mapping

# What makes concurrent S3 writers safe. AWS_S3_ALLOW_UNSAFE_RENAME is not among them: it lets two writers
# overwrite each other's commit, so choosing it still gets conditional puts.
SAFE_S3_SETTINGS = ("conditional_put", "aws_conditional_put", "aws_s3_locking_provider")


def object_store_options(root: str, options: Mapping[str, str] | None) -> dict[str, str]:
    """The lake's storage options. On S3, concurrent writers are made safe by conditional puts (S3 and the
    S3-compatible stores that honour If-None-Match), unless the options or the environment choose a locking
    provider; credentials stay in the environment (AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL, ...), read by delta-rs."""
    options = dict(options or {})
    chosen = {k.lower() for k in options} | {k.lower() for k in os.environ if k.lower() in SAFE_S3_SETTINGS}
    if root.startswith(("s3://", "s3a://")) and not chosen & set(SAFE_S3_SETTINGS):
        options["conditional_put"] = "etag"
    return options
