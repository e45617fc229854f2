"""Where the trainer runs: its command line, and the pod it runs in on Kubernetes.

The trainer reads a bundle folder and writes a model folder; both must be the same paths on the Dagster side
and in the pod. On Kubernetes the volume claim holding the Refinery home is mounted in the pod at the home's
own path, so every path in the command means the same file on both sides; or, with an object store, the bundle
and the model pass through it and the pod needs no volume at all.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

HOME_VOLUME = "refinery-home"


def trainer_command(
    prefix: list[str], bundle: Path | str, output: Path | str, params: dict[str, object], checkpoints: Path
) -> list[str]:
    """`trainers.train` on a bundle, after the interpreter or a launcher prefix (`torchrun --nproc-per-node 4`)."""
    return [
        *prefix,
        "-m",
        "trainers.train",
        "--bundle",
        str(bundle),
        "--output",
        str(output),
        "--params",
        json.dumps(params),
        "--checkpoints",
        str(checkpoints),
    ]


LAUNCHERS_VARIABLE = "REFINERY_TRAINER_LAUNCHERS"  # launchers a deployer allows, as written, one per line
# torchrun's options that only shape the process group: none makes it run a program other than the trainer
TORCHRUN_OPTIONS = frozenset(
    {
        "--nproc-per-node",
        "--nnodes",
        "--node-rank",
        "--master-addr",
        "--master-port",
        "--rdzv-backend",
        "--rdzv-endpoint",
        "--rdzv-id",
        "--max-restarts",
        "--monitor-interval",
    }
)
TORCHRUN_FLAGS = frozenset({"--standalone"})
OPTION_VALUE = re.compile(r"[A-Za-z0-9_.:,/-]+")


class LauncherError(ValueError):
    """A launcher that is neither torchrun with its process-group options nor one the deployer allows."""


def allowed_launchers() -> frozenset[str]:
    """The launchers the deployer names in REFINERY_TRAINER_LAUNCHERS (set where the code location runs)."""
    return frozenset(line.strip() for line in os.environ.get(LAUNCHERS_VARIABLE, "").splitlines() if line.strip())


def is_torchrun(program: str) -> bool:
    """Whether a word names torchrun: on the PATH, or beside this Python."""
    return program == "torchrun" or Path(program) == Path(sys.executable).with_name("torchrun")


def torchrun_options_refused(words: list[str]) -> list[str]:
    """The words of a torchrun command line that are not its process-group options and their values."""
    refused, expecting_value = [], False
    for word in words:
        name, has_value, value = word.partition("=")
        name = name.replace("_", "-")
        if expecting_value:
            expecting_value = False
            if OPTION_VALUE.fullmatch(word):
                continue
        elif name in TORCHRUN_FLAGS and not has_value:
            continue
        elif name in TORCHRUN_OPTIONS:
            expecting_value = not has_value
            if not has_value or OPTION_VALUE.fullmatch(value):
                continue
        refused.append(word)
    return refused + (["(a value)"] if expecting_value else [])


def checked_launcher(launcher: str) -> list[str]:
    """The launcher's words, when it is torchrun with process-group options only, or allowed by the deployer:
    a launcher set in a run's config (anyone who reaches the UI) must not run any other program."""
    words = shlex.split(launcher)
    if launcher.strip() in allowed_launchers():
        return words
    if words and is_torchrun(words[0]) and not torchrun_options_refused(words[1:]):
        return words
    refused = torchrun_options_refused(words[1:]) if words and is_torchrun(words[0]) else words[:1]
    raise LauncherError(
        f"the trainer launcher {launcher!r} is refused at {' '.join(refused)!r}: use torchrun with "
        f"{', '.join(sorted(TORCHRUN_OPTIONS | TORCHRUN_FLAGS))}, or name the launcher in {LAUNCHERS_VARIABLE} "
        "where the code location runs"
    )


def launcher_prefix(launcher: str, interpreter: str) -> list[str]:
    """The checked launcher's words, or the interpreter alone."""
    return checked_launcher(launcher) if launcher.strip() else [interpreter]


@dataclass(frozen=True)
class PodSettings:
    """What a trainer pod asks Kubernetes for."""

    image: str
    home: str  # the Refinery home's path, where the volume claim is mounted
    volume_claim: str
    cpu: str = ""  # e.g. "8"
    memory: str = ""  # e.g. "32Gi"
    gpus: int = 0
    node_selector: dict[str, str] = field(default_factory=dict)
    service_account: str = ""
    secret_env: str = ""  # a Secret whose keys become environment variables (object-store credentials)
    through_store: bool = False  # bundle and model pass through object storage: no volume needed


# What a trainer pod runs as and with: a run's config may choose only values its deployer lists (one per line,
# where the code location runs); an image is code, an account and a Secret are access.
POD_ALLOW_LISTS = {
    "image": "REFINERY_TRAINER_IMAGES",
    "namespace": "REFINERY_TRAINER_NAMESPACES",
    "service_account": "REFINERY_TRAINER_SERVICE_ACCOUNTS",
    "secret_env": "REFINERY_TRAINER_SECRETS",
}
ALWAYS_ALLOWED = {"namespace": "default", "service_account": "", "secret_env": ""}


def check_pod_choices(chosen: dict[str, str]) -> None:
    """Refuse a pod image, namespace, service account or Secret its deployer has not listed."""
    for name, variable in POD_ALLOW_LISTS.items():
        value = chosen[name]
        allowed = {line.strip() for line in os.environ.get(variable, "").splitlines() if line.strip()}
        if value != ALWAYS_ALLOWED.get(name) and value not in allowed:
            raise LauncherError(
                f"the trainer pod's {name} {value!r} is not one its deployer allows: list it in {variable} "
                "where the code location runs"
            )


def trainer_pod_spec(settings: PodSettings) -> dict[str, object]:
    """The pod spec the trainer container starts from (the Pipes client adds image, command and its env)."""
    if not settings.image:
        raise ValueError("a Kubernetes trainer needs an image with Refinery installed (`image`)")
    if not settings.volume_claim and not settings.through_store:
        raise ValueError(
            "a Kubernetes trainer needs the volume claim holding the Refinery home (`volume_claim`), "
            "or an object store the bundle and model pass through (`store_uri`)"
        )
    amounts = {"cpu": settings.cpu, "memory": settings.memory}
    requests = {name: value for name, value in amounts.items() if value}
    limits = {**requests, **({"nvidia.com/gpu": str(settings.gpus)} if settings.gpus else {})}
    container: dict[str, object] = {"resources": {"requests": requests, "limits": limits}}
    if settings.secret_env:
        container["envFrom"] = [{"secretRef": {"name": settings.secret_env}}]
    spec: dict[str, object] = {"containers": [container], "restartPolicy": "Never"}
    if settings.volume_claim:
        container["volumeMounts"] = [{"name": HOME_VOLUME, "mountPath": settings.home}]
        spec["volumes"] = [{"name": HOME_VOLUME, "persistentVolumeClaim": {"claimName": settings.volume_claim}}]
    if settings.node_selector:
        spec["nodeSelector"] = dict(settings.node_selector)
    if settings.service_account:
        spec["serviceAccountName"] = settings.service_account
    if settings.gpus:  # GPU nodes are usually tainted so that only GPU work lands there
        spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    return spec
