"""Training across processes and with less memory: strategies, gradient sync at the step boundary, FSDP2 on 2 CPU
processes (`torchrun`, gloo) with sharded checkpoints and exact resume, LoRA with merged checkpoints."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from scripted_players import scripted_completions
from training_support import gathered_training_state
from typer.testing import CliRunner

from cli import app
from datagen.errors import ConfigError
from training.config import LossConfig
from training.distributed import Processes
from training.model import load_model_and_processor, vision_modules
from training.parallel import resolve_strategy
from training.update import accumulate_gradients

pytest_plugins = ["training_fixtures"]
pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
ONE = Processes(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
TWO = Processes(rank=1, world_size=2, local_rank=1, device=torch.device("cpu"))


# ---- strategies and launchers ------------------------------------------------------------------------------------


def test_strategies_resolve_for_the_processes_launched():
    assert resolve_strategy("auto", ONE) == "none" and resolve_strategy("auto", TWO) == "ddp"
    assert resolve_strategy("fsdp2", TWO) == "fsdp2"
    with pytest.raises(ConfigError, match="each would train its own copy"):
        resolve_strategy("none", TWO)
    with pytest.raises(ConfigError, match="torchrun --nproc_per_node N"):
        resolve_strategy("fsdp2", ONE)


@pytest.mark.parametrize(("variable", "message"), [("ACCELERATE_USE_DEEPSPEED", "DeepSpeed is not supported"),
                                                   ("ACCELERATE_USE_FSDP", "FSDP plugin is not used")])  # fmt: skip
def test_accelerate_deepspeed_and_fsdp_configs_are_refused_pointing_to_fsdp2(monkeypatch, variable, message):
    monkeypatch.setenv(variable, "true")
    with pytest.raises(ConfigError, match=message) as caught:
        Processes.start()
    assert "fsdp2" in str(caught.value)


def test_freezing_the_vision_tower_of_a_model_without_one_is_a_clear_error():
    with pytest.raises(ConfigError, match="no module named any of visual"):
        vision_modules(torch.nn.Sequential(torch.nn.Linear(2, 2)))


def test_gradients_are_synchronised_once_per_step_at_its_last_micro_batch():
    theta = torch.nn.Parameter(torch.tensor(0.5))
    chunks = [(scripted_completions([f"reply {i} " * (i + 1) for i in range(5)]), torch.randn(5)),
              (scripted_completions(["a b", "c"]), torch.tensor([1.0, -1.0]))]  # fmt: skip
    calls = []

    def backward(loss, last):
        calls.append(last)
        loss.backward()

    accumulate_gradients(
        lambda batch: theta * batch.completion_mask.float() - 1.0,
        None,
        chunks,
        loss_config=LossConfig(kl_coef=0.0),
        micro_batch_size=2,
        backward=backward,
    )
    assert calls == [False, False, False, True], "3 + 1 micro-batches, synchronised at the last one"
    assert theta.grad is not None


# ---- FSDP2 on 2 CPU processes ------------------------------------------------------------------------------------


def torchrun_train(data, model, out, *extra) -> subprocess.CompletedProcess:
    bin_dir = Path(sys.executable).parent
    launcher = [str(bin_dir / "torchrun"), "--standalone", "--nproc_per_node", "2", str(bin_dir / "vzero")]
    command = [*launcher, "train", "--data", str(data), "--model", str(model), "--out", str(out),
               "--recipe", "tiny-cpu-fsdp", *extra]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


@pytest.fixture(scope="module")
def fsdp_run(tmp_path_factory, chart_dataset, tiny_model):
    out = tmp_path_factory.mktemp("fsdp") / "run"
    torchrun_train(chart_dataset, tiny_model, out, "--max-steps", "3")
    return tiny_model, out


def test_fsdp2_on_two_processes_takes_one_optimizer_step_per_step_on_policy(fsdp_run):
    _, out = fsdp_run
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3], "only the main process writes"
    assert [m["optim/steps"] for m in metrics] == [1, 2, 3]
    assert all(abs(m["loss/approx_kl"]) < 1e-6 and m["loss/clip_fraction"] == 0 for m in metrics)
    assert all(m["game/accuracy"] in (0.0, 0.5, 1.0) for m in metrics), "one game on each process, gathered"
    games = [json.loads(line) for line in (out / "games.jsonl").read_text().splitlines()]
    assert [g["step"] for g in games] == [1, 1, 2, 2, 3, 3] and len(
        {g["pair_id"] for g in games if g["step"] == 1}
    ) == 2
    assert sorted(p.name for p in (out / "checkpoints" / "step-000003" / "training_state").iterdir()) == [
        ".metadata", "__0_0.distcp", "__1_0.distcp"]  # fmt: skip


def test_fsdp2_checkpoints_hold_the_trained_weights_and_resume_exactly(fsdp_run, tmp_path, chart_dataset):
    model, full = fsdp_run
    out = tmp_path / "run"
    shutil.copytree(full, out)
    shutil.rmtree(out / "checkpoints" / "step-000003")
    torchrun_train(chart_dataset, model, out, "--max-steps", "3", "--resume")

    straight, resumed = (gathered_training_state(run / "checkpoints" / "step-000003") for run in (full, out))
    assert straight["model"].keys() == resumed["model"].keys()
    assert all(torch.equal(straight["model"][k], resumed["model"][k]) for k in straight["model"]), "fp32 weights"
    assert straight["optimizer"]["state"].keys() == resumed["optimizer"]["state"].keys()
    for key, moments in straight["optimizer"]["state"].items():
        assert all(torch.equal(value, resumed["optimizer"]["state"][key][name]) for name, value in moments.items())

    # The model folder is the trained fp32 weights in bf16, under the model's own names.
    saved = load_model_and_processor(full / "checkpoints" / "step-000003", dtype=torch.bfloat16).model.state_dict()
    trained = straight["model"]
    assert trained.keys() <= saved.keys()
    assert all(torch.equal(saved[key], trained[key].to(torch.bfloat16)) for key in trained)
    start = load_model_and_processor(model).model.state_dict()
    assert any(not torch.equal(start[key], trained[key]) for key in trained), "training moved the weights"
    for name in ("model.safetensors",):
        assert (
            load_file(full / "checkpoints" / "step-000003" / name).keys()
            == load_file(out / "checkpoints" / "step-000003" / name).keys()
        )
    assert json.loads((full / "checkpoints" / "step-000003" / "config.json").read_text())["dtype"] == "bfloat16"


# ---- LoRA --------------------------------------------------------------------------------------------------------


def test_lora_trains_adapters_only_and_checkpoints_the_merged_model(tmp_path, chart_dataset, tiny_model):
    from peft import LoraConfig, get_peft_model

    out = tmp_path / "run"
    command = ["train", "--data", str(chart_dataset), "--model", str(tiny_model), "--out", str(out),
               "--recipe", "tiny-cpu", "--max-steps", "2", "--set", "lora.rank=4", "--set", "lora.alpha=8",
               "--set", "optim.freeze_vision=true", "--set", "optim.lr=0.02",
               "--set", "checkpoint_dtype=fp32"]  # fmt: skip
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert metrics[0]["loss/kl"] == 0.0, "the reference is the policy with its adapters off: identical at first"
    assert metrics[1]["loss/kl"] > 0 and all(abs(m["loss/approx_kl"]) < 1e-6 for m in metrics)

    checkpoint = out / "checkpoints" / "step-000002"
    state = gathered_training_state(checkpoint)
    assert state["model"] and all(".lora_" in key for key in state["model"]), "only adapters are trained and saved"
    # Independent merge: peft's own merge_and_unload of the base model with the trained adapters.
    base = load_model_and_processor(tiny_model).model
    targets = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$"
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets))
    missing = peft_model.load_state_dict(state["model"], strict=False)
    assert not missing.unexpected_keys
    expected = peft_model.merge_and_unload().state_dict()
    saved = load_model_and_processor(checkpoint).model.state_dict()
    assert saved.keys() == expected.keys()
    assert max(float((saved[key] - expected[key]).abs().max()) for key in expected) < 1e-6
    start = load_model_and_processor(tiny_model).model.state_dict()
    changed = {key for key in start if not torch.equal(start[key], saved[key])}
    assert changed and all("language_model" in key and "proj" in key for key in changed)
    assert all(torch.equal(start[key], saved[key]) for key in start if ".visual." in key), "vision tower frozen"
