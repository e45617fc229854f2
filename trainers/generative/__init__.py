"""Supervised fine-tuning of causal language models: chat rendering, packing, the trainer, generation."""
