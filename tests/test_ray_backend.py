"""`--backend ray` on a real local Ray instance (CPU only, 127.0.0.1, 2 CPUs), started once for this module.

What is checked: the dataset's bytes equal the local backend's; a task whose process is killed mid-shard is
re-run by Ray and the dataset is still complete and identical; a URL output is written from the tasks; work no
node can take is refused instead of waiting forever.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest

from chart_edit.domain import DOMAIN, ChartConfig
from datagen.errors import ConfigError
from datagen.ray_backend import check_reachable
from datagen.registry import WorkerResources
from datagen.runner import RunOptions, run
from tests.conftest import SMALL, content_hash, make_chart_dataset

ray = pytest.importorskip("ray")

SHARD_TASK_TITLE = "ray::vzero-chart-shard"
"""What Ray names a worker process while it runs a chart shard task (the task's name; an idle one is `ray::IDLE`)."""


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    yield
    ray.shutdown()


def shard_digests(folder: Path) -> dict[str, str]:
    manifest = json.loads((folder / "manifest.json").read_text())
    return {name: entry["sha256"] for name, entry in manifest["shards"].items()}


def ray_options(out: Path | str, **changes) -> RunOptions:
    return RunOptions(out=out, num=12, seed=3, workers=2, shard_size=6, backend="ray", **changes)


def test_a_ray_run_writes_the_same_dataset_as_the_local_backend(tmp_path, chart_dataset):
    summary = run(DOMAIN, ChartConfig(**SMALL), ray_options(tmp_path / "ray"))
    assert summary.complete and summary.shards_made == 2 and summary.records_made == 12
    assert content_hash(tmp_path / "ray") == content_hash(chart_dataset)
    assert shard_digests(tmp_path / "ray") == shard_digests(chart_dataset)
    assert (tmp_path / "ray" / "manifest.json").read_bytes() == (chart_dataset / "manifest.json").read_bytes()
    assert (tmp_path / "ray" / "report.jsonl").read_bytes() == (chart_dataset / "report.jsonl").read_bytes()


def test_a_shard_task_killed_mid_way_is_rerun_and_the_dataset_is_complete(tmp_path):
    local = make_chart_dataset(tmp_path / "local", num=16, seed=5, shard_size=4)
    killed: list[int] = []
    finished = threading.Event()

    def kill_the_first_running_task() -> None:
        while not finished.is_set():
            for process in psutil.process_iter(["pid", "cmdline"]):
                if (process.info["cmdline"] or [""])[0].startswith(SHARD_TASK_TITLE):
                    os.kill(process.info["pid"], signal.SIGKILL)
                    killed.append(process.info["pid"])
                    return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_the_first_running_task)
    killer.start()
    options = RunOptions(out=tmp_path / "ray", num=16, seed=5, workers=2, shard_size=4, backend="ray")
    try:
        summary = run(DOMAIN, ChartConfig(**SMALL), options)
    finally:
        finished.set()
        killer.join()
    assert killed, "no shard task was seen running"
    assert not psutil.pid_exists(killed[0]) or psutil.Process(killed[0]).status() == psutil.STATUS_ZOMBIE
    assert summary.complete and summary.records_made == 16
    assert content_hash(tmp_path / "ray") == content_hash(local)
    assert not [path for path in (tmp_path / "ray").rglob("*") if path.name.endswith(".tmp")]


def test_ray_tasks_commit_their_shards_to_a_url_output(tmp_path, chart_dataset):
    url = f"file://{tmp_path / 'bucket' / 'pairs'}"
    summary = run(DOMAIN, ChartConfig(**SMALL), ray_options(url))
    assert summary.complete and summary.out == url
    written = tmp_path / "bucket" / "pairs"
    assert shard_digests(written) == shard_digests(chart_dataset)
    assert content_hash(written) == content_hash(chart_dataset)
    assert sorted(path.name for path in written.iterdir()) == [
        "README.md",
        "data",
        "manifest.json",
        "preview.png",
        "report.jsonl",
    ]


def test_work_no_node_can_take_is_refused_instead_of_waiting_forever(tmp_path):
    from clevr_scenes.domain import DOMAIN as CLEVR
    from clevr_scenes.domain import ClevrConfig

    assert CLEVR.resources(ClevrConfig(device="cuda")) == WorkerResources(cpus=1, gpus=1)
    assert CLEVR.resources(ClevrConfig()) == WorkerResources(cpus=1, gpus=0)
    on_a_gpu = dataclasses.replace(DOMAIN, resources=lambda config: WorkerResources(cpus=1, gpus=1))
    with pytest.raises(ConfigError, match=r"each chart worker needs 1 GPU, and no node of the Ray cluster has that"):
        run(on_a_gpu, ChartConfig(**SMALL), ray_options(tmp_path / "gpu"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--backend", "spark"], "--backend must be one of local, ray, got 'spark'"),
        (["--ray-address", "auto"], "--ray-address applies to --backend ray only"),
    ],
)
def test_bad_backend_options_are_refused_with_what_is_wrong(tmp_path, options, message):
    from typer.testing import CliRunner

    from cli import app

    result = CliRunner().invoke(app, ["chart", "--out", str(tmp_path / "ds"), "--num", "2", *options])
    assert result.exit_code == 1
    assert message in result.output.replace("\n", " ")
    assert not (tmp_path / "ds").exists()


def test_a_cluster_address_nothing_answers_at_is_refused_at_once():
    """Ray itself would retry such an address for minutes, printing only warnings."""
    with pytest.raises(ConfigError, match=r"cannot reach the Ray cluster at 127.0.0.1:9: Connection refused"):
        check_reachable("127.0.0.1:9")
    check_reachable("auto")  # left to Ray
