"""A Ray cluster of several nodes on one machine (`ray.cluster_utils.Cluster`: a real GCS and one raylet per node),
one of which dies mid-run: its shards must be re-run on the others and the dataset come out whole and identical.

Ray's test cluster binds to the machine's address, not 127.0.0.1 (which it refuses to join by); nothing outside the
machine is contacted.
"""

from __future__ import annotations

import threading
import time

import psutil
import pytest

from chart_edit.domain import DOMAIN, ChartConfig
from datagen.manifest import read_manifest
from datagen.runner import RunOptions, run
from tests.conftest import SMALL, content_hash, make_chart_dataset

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")


def test_when_a_node_dies_its_shards_are_rerun_on_the_others_and_the_dataset_is_complete(tmp_path):
    local = make_chart_dataset(tmp_path / "local", num=24, seed=7, shard_size=3)
    # The head takes no tasks, so that every shard runs on one of the two worker nodes.
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    doomed = cluster.add_node(num_cpus=1)
    cluster.add_node(num_cpus=1)
    out = tmp_path / "ray"
    killed: list[int] = []

    def kill_the_node_while_it_runs_a_shard_task() -> None:
        raylet = psutil.Process(doomed.all_processes["raylet"][0].process.pid)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            running = [
                child.pid
                for child in raylet.children(recursive=True)
                if (child.cmdline() or [""])[0].startswith("ray::vzero-chart-shard")
            ]
            if running and (out / "manifest.json").exists():
                cluster.remove_node(doomed, allow_graceful=False)
                killed.extend(running)
                return
            time.sleep(0.005)

    ray.init(address=cluster.address, log_to_driver=False)
    try:
        killer = threading.Thread(target=kill_the_node_while_it_runs_a_shard_task)
        killer.start()
        options = RunOptions(out=out, num=24, seed=7, workers=2, shard_size=3, backend="ray")
        summary = run(DOMAIN, ChartConfig(**SMALL), options)
        killer.join()
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert killed, "the node was not removed while it ran a shard task"
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in killed)
    manifest = read_manifest(out)
    assert summary.complete and manifest.complete and manifest.counts.written == 24
    assert content_hash(out) == content_hash(local)
