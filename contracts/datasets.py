"""What every layer calls a dataset: the default one of versions registered without a declaration."""

UNDECLARED = "default"
