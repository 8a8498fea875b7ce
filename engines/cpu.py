"""CPU threads for the torch engine: as many as the cores this process really has, idle ones asleep.

torch sizes its intra-op pool to the machine's cores, ignoring the CPU affinity mask
and a container's CPU quota, and its OpenMP threads spin while they wait for work. With
several workers on the same cores (``make run`` starts one per model) and anything else
busy, the spinning threads fight each other for the cores and decoding collapses
(bench/cpu_contention.py). So each worker gets a share of the cores it can use
(``PLAYGROUND_CPU_THREADS``, set per worker by ``make run``; else all of them), and
``OMP_WAIT_POLICY=PASSIVE`` makes idle threads sleep. OpenMP reads its variables once,
when torch is imported: ``configure_threads`` must run before that.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

THREADS_ENV = "PLAYGROUND_CPU_THREADS"
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cgroup_quota(root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> float:
    """CPUs allowed by this process's cgroup (v2 ``cpu.max`` or v1 CFS quota); inf if none.

    Every level of the hierarchy caps the ones below it, so the smallest quota wins.
    """
    quotas = [math.inf]
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        rel = path.lstrip("/")
        if controllers == "":  # cgroup v2: one unified hierarchy
            folders = [root / rel, *(root / rel).parents]
            for folder in folders:
                if not folder.is_relative_to(root):
                    break
                quotas.append(_read_v2(folder / "cpu.max"))
        elif "cpu" in controllers.split(","):  # cgroup v1
            for base in (root / controllers, root / "cpu,cpuacct", root / "cpu"):
                if base.is_dir():
                    for folder in [base / rel, *(base / rel).parents]:
                        if not folder.is_relative_to(base):
                            break
                        quotas.append(_read_v1(folder))
                    break
    return min(quotas)


def _read_v2(path: Path) -> float:
    try:
        quota, period = path.read_text().split()[:2]
    except (OSError, ValueError):
        return math.inf
    return math.inf if quota == "max" else int(quota) / int(period)


def _read_v1(folder: Path) -> float:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return math.inf
    return math.inf if quota <= 0 or period <= 0 else quota / period


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by its cgroup's CPU quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota != math.inf:
        count = min(count, max(1, math.floor(quota)))
    return max(1, count)


def thread_share(workers: int, cpus: int | None = None) -> int:
    """Threads for each of ``workers`` CPU engines sharing this machine's CPUs (at least 1)."""
    cpus = available_cpus() if cpus is None else cpus
    return max(1, cpus // max(1, workers))


def cpu_threads() -> int:
    """This process's budget: ``PLAYGROUND_CPU_THREADS`` if set, else every CPU it may use."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    return max(1, int(raw)) if raw else available_cpus()


def configure_threads() -> int:
    """Before torch is imported: idle OpenMP threads sleep, and pools are sized to the budget.

    Explicit settings in the environment win. Returns the budget.
    """
    threads = cpu_threads()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(name, str(threads))
    return threads
