"""Model selection: candidates trained on the same split, measured for quality and compute, and a policy."""
