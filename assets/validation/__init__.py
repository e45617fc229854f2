"""Validation: the compiled rules of rules/ applied to frames; failing rows become quarantine rows."""
