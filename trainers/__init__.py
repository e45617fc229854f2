"""Refinery's trainer backend: Lightning fine-tuning, export, registry and serving.

Imports nothing from Dagster except dagster-pipes, so a GPU box or a pod needs only torch,
lightning, transformers, pyarrow and dagster-pipes.
"""
