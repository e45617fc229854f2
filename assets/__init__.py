"""Refinery's stages: one module per stage, plain Polars functions plus thin Dagster wrappers."""
