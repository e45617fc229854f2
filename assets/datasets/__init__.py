"""Datasets: a declared source mapping, tasks with label sets, rules and training settings, many per home."""
