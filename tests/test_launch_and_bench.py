"""What ships for clusters, checked on the CPU: the launch configs, and the GPU and Ray benchmarks' smoke runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from training.recipe import load_recipe

pytest_plugins = ["training_fixtures"]
CONFIGS = Path(__file__).parent.parent / "training" / "configs"
BENCH = Path(__file__).parent.parent / "bench" / "bench_train_gpu.py"
RAY_BENCH = Path(__file__).parent.parent / "bench" / "bench_ray.py"


@pytest.mark.parametrize(("name", "machines", "processes"), [("one-gpu", 1, 1), ("one-node", 1, 8),
                                                              ("multi-node", 2, 16)])  # fmt: skip
def test_launch_configs_start_plain_processes_and_leave_sharding_to_the_recipe(name, machines, processes):
    config = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    assert (config["num_machines"], config["num_processes"]) == (machines, processes)
    assert config["distributed_type"] == ("NO" if processes == 1 else "MULTI_GPU")
    assert config["mixed_precision"] == "no", "precision is the recipe's"
    assert not {key for key in config if "deepspeed" in key or "fsdp" in key}
    assert load_recipe("paper").parallel.strategy == "fsdp2"


def test_the_gpu_benchmark_runs_its_smoke_mode_on_the_cpu(tmp_path, chart_dataset, tiny_model):
    command = [sys.executable, str(BENCH), "--smoke", "--pairs", str(chart_dataset), "--tiny", str(tiny_model),
               "--games", "2", "--num-samples", "2", "--max-new-tokens", "6", "--results", str(tmp_path)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env={"OMP_NUM_THREADS": "1",
                            "PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path)})  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads((tmp_path / "train_gpu_smoke.json").read_text())
    # 2 rounds x 5 players clue turns + 1 vote call: batched once for both games, once per game the release's way.
    assert measured["batched"]["calls"] == 11 and measured["release"]["calls"] == 2 * 11
    assert measured["batched"]["tokens"] > 0 and measured["ratio"] > 0
    assert {"policy log-probs", "reference log-probs", "backward", "optimizer"} <= set(measured["step"])
    assert "ratio (goal >= 10x)" in (tmp_path / "train_gpu_smoke.md").read_text()


def test_the_ray_benchmark_runs_its_smoke_mode(tmp_path):
    pytest.importorskip("ray")
    command = [sys.executable, str(RAY_BENCH), "--smoke", "--results", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env={"OMP_NUM_THREADS": "1",
                            "PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path)})  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    local, ray = json.loads((tmp_path / "ray_smoke.json").read_text())["rows"]
    assert (local["backend"], ray["backend"]) == ("local", "ray")
    assert local["pairs"] == ray["pairs"] == 16 and ray["same"] == "yes (8/8)", "both backends write the same bytes"
    assert ray["startup_s"] > 0 and ray["ratio"] > 0
    # Ray's workers are the raylet's children, which getrusage never sees: the process tree's count must.
    assert ray["cpu_s"] > ray["rusage_cpu_s"] and local["cpu_s"] >= 0.9 * local["rusage_cpu_s"]
    assert "time ray/local" in (tmp_path / "ray_smoke.md").read_text()
