"""Benchmark: the runner's Ray backend on a local 2-CPU Ray instance against its process pool (2 workers).

Why: `--backend ray` exists to spread a run over a cluster; on one machine it should cost little more than the
process pool, so that choosing it never makes a run noticeably slower. The goal is Ray time / pool time <= 1.10.
The same chart and CLEVR datasets (same num, seed, shard size, image size) are made both ways into fresh folders,
and every shard file listed in each manifest.json is hashed: the two backends must write identical bytes.

Ray is started by the measuring process itself (`ray.init(num_cpus=2, include_dashboard=False)`, what the runner
does when given no address) before the clock starts, so the ratio is the engine's overhead while running; the
start-up is its own column, and `ray.shutdown()` (after the clock stops) is not counted anywhere.

CPU seconds count every process of the measuring process's tree, this one included (Linux `/proc`): the sum of
utime + stime + cutime + cstime over the tree at the end, minus the same sum at the start. That takes in Ray's
daemons (GCS, raylet, its agents), its task workers and the item processes they start, and every process that
exited during the run and was reaped by one still in the tree; `getrusage(RUSAGE_CHILDREN)` would miss Ray's,
whose workers are the raylet's children. It is recorded next to the self + reaped-children count the other
benchmarks use, which agrees with it for the pool. Peak RSS is the largest single process (`VmHWM` of those alive
at the end, `ru_maxrss` of those reaped), as in the other benchmarks; the tree's summed RSS (shared pages counted
in each process) is sampled every 0.5 s. Each run is in a fresh subprocess. Writes `bench/results/ray.{md,json}`.

    python bench/bench_ray.py [--domains chart,clevr] [--smoke] [--results DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

import benchkit

WORKERS = 2
PAGE_MIB = os.sysconf("SC_PAGE_SIZE") / 2**20
TICK_S = 1 / os.sysconf("SC_CLK_TCK")
SAMPLE_EVERY_S = 0.5


@dataclass(frozen=True)
class Plan:
    """One domain's dataset: each backend makes exactly this."""

    num: int
    shard_size: int
    size: str


# Each >= 30 s with the pool (~50 chart pairs/s at 640x480, ~2.2 CLEVR pairs/s at 320x240 with 2 workers), in 16
# and 8 shards: at least 4 per worker, so that Ray schedules several tasks on each CPU.
PLANS = {"chart": Plan(2000, 125, "640x480"), "clevr": Plan(80, 10, "320x240")}
SMOKE = {"chart": Plan(16, 2, "320x240")}


def process_tree() -> dict[int, list[str]]:
    """This process and all its descendants: pid -> the fields of `/proc/PID/stat` after the command name."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            stats[int(entry.name)] = text[text.rindex(")") + 2 :].split()
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(pid)
    tree, frontier = {}, [os.getpid()]
    while frontier:
        pid = frontier.pop()
        tree[pid] = stats[pid]
        frontier += [child for child in children.get(pid, []) if child in stats]
    return tree


def tree_cpu_s(tree: dict[int, list[str]]) -> float:
    """utime + stime + cutime + cstime, summed over `tree`."""
    return sum(int(value) for fields in tree.values() for value in fields[11:15]) * TICK_S


def peak_rss_mib(tree: dict[int, list[str]]) -> float:
    """The largest peak RSS of one process: `VmHWM` of those in `tree`, `ru_maxrss` of those reaped here."""
    peaks = [resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024]
    for pid in tree:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        peaks += [int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")]
    return max(peaks)


class TreeClock:
    """Wall seconds, CPU seconds of the whole process tree, peak RSS and peak summed RSS of the `with` block."""

    def __enter__(self) -> TreeClock:
        self.total_rss_mib = 0.0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._rusage_before, _ = benchkit.usage()
        self._cpu_before = tree_cpu_s(process_tree())
        self._started = time.perf_counter()
        self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            rss = sum(int(fields[21]) for fields in process_tree().values()) * PAGE_MIB
            self.total_rss_mib = max(self.total_rss_mib, rss)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.wall_s = time.perf_counter() - self._started
        tree = process_tree()
        self.cpu_s = tree_cpu_s(tree) - self._cpu_before
        self.rusage_cpu_s = benchkit.usage()[0] - self._rusage_before
        self.peak_rss_mib = peak_rss_mib(tree)
        self._stop.set()
        self._sampler.join()

    def as_dict(self) -> dict[str, float]:
        return {
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "rusage_cpu_s": self.rusage_cpu_s,
            "peak_rss_mib": self.peak_rss_mib,
            "total_rss_mib": self.total_rss_mib,
        }


def shard_digests(out: Path) -> dict[str, str]:
    """sha256 of every shard file manifest.json lists, hashed from the file (the manifest's own record checked)."""
    from datagen.files import sha256_file

    shards = json.loads((out / "manifest.json").read_text())["shards"]
    digests = {entry["path"]: sha256_file(out / entry["path"]) for entry in shards.values()}
    wrong = [entry["path"] for entry in shards.values() if digests[entry["path"]] != entry["sha256"]]
    if wrong:
        raise SystemExit(f"{out}: shards differ from the sha256 their manifest records: {wrong}")
    return digests


def measure(domain_name: str, backend: str, out: Path, plan: Plan) -> dict:
    """Make `plan` with `backend` (Ray started first, untimed but for its own column); the reply's row."""
    from datagen.registry import get_domain
    from datagen.runner import RunOptions, run

    domain = get_domain(domain_name)
    width, height = (int(value) for value in plan.size.split("x"))
    config = domain.config_type(width=width, height=height)
    options = RunOptions(out=out, num=plan.num, seed=0, workers=WORKERS, shard_size=plan.shard_size, backend=backend)
    startup_s = None
    if backend == "ray":
        import ray

        started = time.perf_counter()
        ray.init(num_cpus=WORKERS, include_dashboard=False)
        startup_s = time.perf_counter() - started
    with TreeClock() as clock:
        summary = run(domain, config, options)
    if backend == "ray":
        ray.shutdown()
    return {"pairs": summary.records_made, "startup_s": startup_s, **clock.as_dict(), "shards": shard_digests(out)}


def same_shards(local: dict[str, str], ray: dict[str, str]) -> str:
    """'yes (n/n)' when both backends wrote the same shard files with the same bytes, else what differs."""
    differing = sorted(path for path in local.keys() | ray.keys() if local.get(path) != ray.get(path))
    return f"yes ({len(local)}/{len(local)})" if local and not differing else f"NO: {len(differing)} differ"


def cells(row: dict) -> tuple[str, ...]:
    rate, cost, rss = benchkit.rate_cells(row, rate=".2f", cost=".3f")
    startup = f"{row['startup_s']:.1f}" if row["startup_s"] is not None else "-"
    ratio = f"{row['ratio']:.3f}" if "ratio" in row else "-"
    return (row["domain"], row["backend"], f"{row['wall_s']:.1f}", rate, cost, rss, f"{row['total_rss_mib']:.0f}",
            startup, ratio, row.get("same", "-"))  # fmt: skip


COLUMNS = ("domain", "backend", "wall s", "pairs/s", "CPU-s/pair", "peak RSS MiB", "sum RSS MiB", "Ray start-up s",
           "time ray/local", "identical shards")  # fmt: skip


def markdown(rows: list[dict], plans: dict[str, Plan], load: tuple[list, list]) -> str:
    sizes = "; ".join(f"{name} {plan.num} pairs at {plan.size}, {plan.shard_size} per shard"
                      for name, plan in plans.items())  # fmt: skip
    lines = [
        f"Ray backend (local instance, num_cpus={WORKERS}) against the process pool ({WORKERS} workers): {sizes}; "
        f"{benchkit.machine()}. Load average before / after: {load[0]} / {load[1]}. Wall time and the ratio "
        "exclude Ray's start-up (its own column) and shutdown. CPU-s: every process of the run's tree. Peak RSS: "
        "largest process; sum RSS: the tree's, sampled every 0.5 s.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|---|---|" + "---:|" * (len(COLUMNS) - 3) + "---|",
    ]
    lines += ["| " + " | ".join(cells(row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = benchkit.argument_parser(__doc__)
    parser.add_argument("--domains", default=",".join(PLANS), help="comma-separated: chart, clevr")
    parser.add_argument("--smoke", action="store_true", help="16 chart pairs at 320x240: checks the script")
    parser.add_argument("--results", type=Path, default=benchkit.RESULTS, help="folder for ray.{md,json}")
    parser.add_argument("--plan", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        domain, backend, out = args.measure
        num, shard_size, size = args.plan
        benchkit.reply(measure(domain, backend, Path(out), Plan(int(num), int(shard_size), size)))
        return

    plans = SMOKE if args.smoke else {name: PLANS[name] for name in args.domains.split(",")}
    load_before = benchkit.load_average()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, plan in plans.items():
            made = {}
            for backend in ("local", "ray"):
                out = Path(scratch) / f"{name}-{backend}"
                plan_args = ("--plan", str(plan.num), str(plan.shard_size), plan.size)
                made[backend] = benchkit.in_subprocess(__file__, name, backend, str(out), *plan_args)
                rows.append({"domain": f"{name} {plan.size}", "backend": backend, **made[backend]})
            rows[-1]["ratio"] = made["ray"]["wall_s"] / made["local"]["wall_s"]
            rows[-1]["same"] = same_shards(made["local"]["shards"], made["ray"]["shards"])
    load = (load_before, benchkit.load_average())

    if not sys.stdout.isatty():
        os.environ.setdefault("COLUMNS", "150")  # rich would squeeze the table into 80 columns in a pipe or log
    kind = "smoke run, measures nothing" if args.smoke else f"load {load[0]} -> {load[1]}"
    benchkit.show_table(
        f"Ray backend (local instance, {WORKERS} CPUs) vs process pool ({WORKERS} workers), {kind}",
        COLUMNS,
        [cells(row) for row in rows],
        left=("domain", "backend", "identical shards"),
        notes=[
            "wall s, pairs/s and the ratio exclude Ray's start-up (own column) and shutdown; CPU-s counts every "
            "process of the run's tree (Ray's daemons and workers included); sum RSS is the tree's, sampled."
        ],
    )
    for row in rows:
        row["shards"] = len(row["shards"])
    payload = {"plans": {name: asdict(plan) for name, plan in plans.items()}, "load_average": load, "rows": rows}
    benchkit.write_results("ray_smoke" if args.smoke else "ray", markdown(rows, plans, load), payload, args.results)


if __name__ == "__main__":
    main()
