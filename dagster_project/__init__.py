"""Refinery's Dagster code location."""
