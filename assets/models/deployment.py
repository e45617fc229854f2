"""Deploying a model: the production alias moves to it only past its gate, and only from the model it beat."""

from __future__ import annotations

import time
from pathlib import Path

from trainers.registry import ModelRegistry, read_card, update_card


class NotDeployableError(RuntimeError):
    """A model whose gate did not pass (or never ran)."""


def deploy_latest_model(registry: ModelRegistry, dataset_version: str, run_id: str = "") -> tuple[Path, dict[str, str]]:
    """Move `production` to this run's model of a dataset version (else its newest); returns it and the new aliases.

    The move is a compare-and-swap against the model the gate compared with: if production moved since
    (a rollback, another deployment), `AliasConflictError` says so and nothing changes.
    """
    folder = registry.model_for(dataset_version, run_id)
    card = read_card(folder)
    gate = card.get("evaluation_gate")
    if not gate or not gate["passed"]:
        raise NotDeployableError(f"model {folder.name} did not pass its evaluation gate: {gate}")
    compared_with = (card.get("production_comparison") or {}).get("version")
    aliases = registry.promote(folder.name, expected_production=compared_with)
    update_card(folder, deployed_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return folder, aliases
