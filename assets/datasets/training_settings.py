"""Each task kind's `training:` settings, defined by its trainer's params class: their defaults and help, for the
commented block `refinery init` writes and for the settings reference."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields

import yaml

from trainers.bundle import DOCUMENTS, GENERATION, PAIRS
from trainers.generative.params import PretrainingParams, SftParams
from trainers.params import TrainingParams
from trainers.preference.params import PreferenceParams

CLASSIFICATION = "classification"
TRAINING_PARAMS: dict[str, type] = {  # a task kind's trainer settings
    CLASSIFICATION: TrainingParams,
    GENERATION: SftParams,
    PAIRS: PreferenceParams,
    DOCUMENTS: PretrainingParams,
}
FIXED_BY_KIND = ("model_kind",)  # a causal LM dataset's kind picks its trainer: not a setting to change
REFERENCE = "docs/settings.md"


@dataclass(frozen=True)
class SettingRow:
    """One setting: its name, default and one-line help."""

    name: str
    default: object
    help: str


def params_of_kind(kind: str) -> type:
    """The params class of a task kind's trainer; an unknown kind is refused, naming the known ones."""
    if kind not in TRAINING_PARAMS:
        raise ValueError(f"no training settings for task kind {kind!r} (known: {', '.join(TRAINING_PARAMS)})")
    return TRAINING_PARAMS[kind]


def help_of(params: type, name: str) -> str:
    """A field's help, from the nearest class that gave one (a subclass may change only the default)."""
    for klass in params.__mro__:
        declared = getattr(klass, "__dataclass_fields__", {}).get(name)
        if declared is not None and "help" in declared.metadata:
            return declared.metadata["help"]
    raise ValueError(f"{params.__name__}.{name} has no help: define it with contracts.settings.setting")


def setting_rows(kind: str) -> list[SettingRow]:
    """Every `training:` setting of a task kind, in its class's order."""
    params = params_of_kind(kind)
    skipped = FIXED_BY_KIND if kind != CLASSIFICATION else ()
    return [
        SettingRow(item.name, item.default, help_of(params, item.name))
        for item in fields(params)
        if item.name not in skipped and item.default is not MISSING
    ]


def yaml_scalar(value: object) -> str:
    """A default as YAML writes it, so that it reads back as the same value (`8.0e-05`, `"1"`, `''`)."""
    return yaml.safe_dump(value, width=float("inf")).strip().removesuffix("...").strip()


def commented_training(kind: str, declared: dict) -> str:
    """The defaults in force as commented YAML under `training:`: uncommenting a line changes that setting."""
    rows = [row for row in setting_rows(kind) if row.name not in declared]
    if not rows:
        return ""
    pairs = [(f"{row.name}: {yaml_scalar(row.default)}", row.help) for row in rows]
    width = max(len(pair) for pair, _ in pairs)
    lines = [f"#   {pair:<{width}}  # {help}" for pair, help in pairs]
    opening = [] if declared else ["# training:"]
    note = f"# The trainer's defaults; uncomment a line to change it ({REFERENCE} lists every setting):"
    return "\n".join([note, *opening, *lines]) + "\n"
