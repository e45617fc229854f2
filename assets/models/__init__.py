"""Model lifecycle logic: which examples a model learns from, the promotion gate, scoring inputs and drift."""
