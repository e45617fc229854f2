"""Readers: every way a dataset version arrives (file drops, SQL tables, HTTP APIs), streamed as documents."""
