"""Validation: row rules applied to frames, splits, leakage and the nothing-lost accounting."""
