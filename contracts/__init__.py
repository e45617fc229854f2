"""The floor every layer stands on: shared names (tables, columns), the Delta lock and the store options."""
