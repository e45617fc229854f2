"""Storage: the home folder, Delta tables by dataset version, the record schemas and the version catalog."""
