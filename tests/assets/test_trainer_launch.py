"""Where the trainer runs is configuration: a local process, a launcher such as torchrun, or a Kubernetes pod."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import torch
from safetensors.torch import load_file

from assets.resources import TrainerResource
from tests.conftest import build_tiny_model, write_small_bundle


def test_a_kubernetes_trainer_is_the_pod_dagster_k8s_would_submit(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("REFINERY_TRAINER_IMAGES", "registry.example/refinery:1.4")
    monkeypatch.setenv("REFINERY_TRAINER_NAMESPACES", "ml")
    monkeypatch.setenv("REFINERY_TRAINER_SECRETS", "lake-credentials")
    from dagster_k8s.pipes import build_pod_body

    trainer = TrainerResource(
        bundles_root=str(tmp_path / "home" / "bundles"),
        kind="kubernetes",
        image="registry.example/refinery:1.4",
        namespace="ml",
        volume_claim="refinery-home",
        cpu="8",
        memory="32Gi",
        gpus=2,
        node_selector={"pool": "a100"},
        secret_env="lake-credentials",
        launcher="torchrun --nproc-per-node 2",
    )
    bundle, output = tmp_path / "home" / "bundles" / "v1", tmp_path / "home" / "models" / "v1"
    request = trainer.pod_request(trainer.command(bundle, output, {"devices": "2"}, tmp_path / "ckpt"))
    body = build_pod_body(
        "trainer", request["image"], request["command"], {"DAGSTER_PIPES_CONTEXT": "x"}, None, request["base_pod_spec"]
    )
    (container,) = body.spec.containers
    assert container.image == "registry.example/refinery:1.4" and request["namespace"] == "ml"
    assert container.command[:4] == ["torchrun", "--nproc-per-node", "2", "-m"]  # the pod's own Python, not ours
    assert container.command[container.command.index("--bundle") + 1] == str(bundle)
    assert container.resources.limits == {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "2"}
    assert container.resources.requests == {"cpu": "8", "memory": "32Gi"}
    assert [(m.name, m.mount_path) for m in container.volume_mounts] == [("refinery-home", str(tmp_path / "home"))]
    assert body.spec.volumes[0].persistent_volume_claim.claim_name == "refinery-home"
    assert body.spec.node_selector == {"pool": "a100"} and body.spec.restart_policy == "Never"
    assert container.env_from[0].secret_ref.name == "lake-credentials"
    assert any(e.name == "DAGSTER_PIPES_CONTEXT" for e in container.env)


def test_a_kubernetes_trainer_without_an_image_or_a_volume_claim_is_refused(tmp_path: Path) -> None:
    trainer = TrainerResource(bundles_root=str(tmp_path / "bundles"), kind="kubernetes", volume_claim="home")
    with pytest.raises(ValueError, match="image"):
        trainer.pod_request(["python"])
    with pytest.raises(ValueError, match="volume claim"):
        TrainerResource(bundles_root=str(tmp_path), kind="kubernetes", image="i").pod_request(["python"])


def test_a_kubernetes_trainer_through_the_object_store_needs_no_volume(tmp_path: Path, monkeypatch) -> None:
    from dagster_k8s.pipes import build_pod_body

    monkeypatch.setenv("REFINERY_TRAINER_IMAGES", "i")
    monkeypatch.setenv("REFINERY_TRAINER_SECRETS", "store-credentials")
    trainer = TrainerResource(
        bundles_root=str(tmp_path / "home" / "bundles"),
        kind="kubernetes",
        image="i",
        store_uri="s3://models/refinery",
        secret_env="store-credentials",
    )
    command = trainer.command("s3://models/refinery/.bundles/v1", "s3://models/refinery/tickets/v1", {}, tmp_path)
    request = trainer.pod_request(command)
    body = build_pod_body("trainer", "i", request["command"], {}, None, request["base_pod_spec"])
    (container,) = body.spec.containers
    assert not body.spec.volumes and not container.volume_mounts
    assert container.command[container.command.index("--output") + 1] == "s3://models/refinery/tickets/v1"
    assert container.env_from[0].secret_ref.name == "store-credentials"


@pytest.mark.slow
def test_a_torchrun_launcher_trains_on_two_gloo_processes_as_one_process_would(tmp_path: Path) -> None:
    bundle = write_small_bundle(tmp_path / "bundle", per_label=4)
    source = build_tiny_model(tmp_path / "bert", "bert", dropout=False)
    common = {
        "model_name_or_path": str(source),
        "max_epochs": 2,
        "shuffle": False,
        "max_length": 64,
        "accelerator": "cpu",
        "learning_rate": 1e-3,
    }
    launcher = f"{Path(sys.executable).with_name('torchrun')} --standalone --nproc-per-node 2"
    runs = {
        "single": (TrainerResource(bundles_root=str(tmp_path)), {**common, "devices": 1, "batch_size": 12}),
        "torchrun": (
            TrainerResource(bundles_root=str(tmp_path), launcher=launcher),
            {**common, "devices": 2, "strategy": "ddp", "batch_size": 6},
        ),
    }
    for name, (trainer, params) in runs.items():
        command = trainer.command(bundle, tmp_path / name, params, tmp_path / f"{name}-checkpoints")
        completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert completed.returncode == 0, completed.stderr[-3000:]
    assert json.loads((tmp_path / "torchrun" / "model_card.json").read_text())["hyperparameters"]["devices"] == "2"
    single, launched = (load_file(tmp_path / name / "model.safetensors") for name in runs)
    assert single.keys() == launched.keys()
    for name in single:
        assert torch.allclose(single[name], launched[name], atol=1e-5), name


@pytest.mark.parametrize(
    "launcher",
    [
        "sh -c 'touch /tmp/refinery-pwned'",
        "torchrun --no-python sh -c 'touch /tmp/refinery-pwned'",
        "torchrun --no_python sh",
        "torchrun --run-path /tmp/evil.py",
        "torchrun --nproc-per-node 2 bash",
        "torchrun --nproc-per-node=2;touch",
        "/tmp/evil/torchrun --standalone",
        "srun --ntasks 2 python",
        "torchrun --nproc-per-node",
    ],
)
def test_a_launcher_from_a_run_config_may_not_run_another_program(tmp_path: Path, launcher: str) -> None:
    trainer = TrainerResource(bundles_root=str(tmp_path), launcher=launcher)
    with pytest.raises(dg.Failure, match=r"the trainer launcher .* is refused at"):
        trainer.command(tmp_path / "b", tmp_path / "m", {}, tmp_path / "c")


def test_torchrun_with_process_group_options_or_a_deployer_allowed_launcher_is_accepted(tmp_path, monkeypatch) -> None:
    def command(launcher: str) -> list[str]:
        return TrainerResource(bundles_root=str(tmp_path), launcher=launcher).command("b", "m", {}, tmp_path / "c")

    assert command("torchrun --standalone --nproc-per-node 4")[:5] == [
        "torchrun",
        "--standalone",
        "--nproc-per-node",
        "4",
        "-m",
    ]
    assert command("torchrun --nnodes=2 --node_rank=1 --master-addr 10.0.0.5 --rdzv-endpoint=10.0.0.5:29400")
    monkeypatch.setenv("REFINERY_TRAINER_LAUNCHERS", "srun --ntasks 2 python\nmpirun -n 4 python")
    assert command("srun --ntasks 2 python")[:4] == ["srun", "--ntasks", "2", "python"]
    with pytest.raises(dg.Failure):
        command("srun --ntasks 2 bash")


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("image", "attacker/anything:latest"),
        ("service_account", "cluster-admin"),
        ("secret_env", "prod-db"),
        ("namespace", "kube-system"),
    ],
)
def test_a_run_config_may_not_choose_a_pod_image_account_secret_or_namespace_the_deployer_did_not_list(
    tmp_path: Path, monkeypatch, setting: str, value: str
) -> None:
    monkeypatch.setenv("REFINERY_TRAINER_IMAGES", "registry.example/refinery:1.4")
    chosen = {"image": "registry.example/refinery:1.4", setting: value}
    trainer = TrainerResource(bundles_root=str(tmp_path), kind="kubernetes", volume_claim="home", **chosen)
    with pytest.raises(ValueError, match=rf"trainer pod's {setting} '{value}' is not one its deployer allows"):
        trainer.pod_request(["python"])
