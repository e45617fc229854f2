"""What every layer calls a dataset and its runs: the default dataset of versions registered without a
declaration, the dynamic partitions that hold every registered version, and the pool training runs queue in."""

UNDECLARED = "default"
DATASET_VERSIONS = "dataset_versions"
TRAINER_POOL = "refinery_trainer"  # fine-tunes and search trials queue in it for the same devices
