"""Training examples: seeded, stratified, leakage-free splits and the nothing-lost accounting of a version."""
