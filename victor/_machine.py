"""Facts about the machine this process runs on: the CPUs it may use, and the CPU's features.

``os.cpu_count()`` counts the node's CPUs, not the ones this process may use: a container
or a JupyterHub/Binder server limited to 1 CPU on a 64-core node sees 64. The usable count
is the smallest of the CPU affinity, the cgroup CPU quota (v2 ``cpu.max`` or v1
``cpu.cfs_quota_us``, on this cgroup and its ancestors) and JupyterHub's ``CPU_LIMIT``.
Every reader takes its inputs as arguments, so the decisions are testable with faked files.
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuBudget", "available_cpus", "cpu_flags", "cpu_name"]

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class CpuBudget:
    """How many CPUs this process may use, and what set the limit."""

    count: int
    #: e.g. ``"affinity (2 of 2)"``, ``"cgroup cpu.max 100000/100000"``, ``"CPU_LIMIT=1"``
    source: str

    def __int__(self) -> int:
        return self.count


def available_cpus(
    *,
    environ: Mapping[str, str] | None = None,
    affinity: int | None = None,
    cgroup_root: Path = CGROUP_ROOT,
    proc_cgroup: Path = Path("/proc/self/cgroup"),
) -> CpuBudget:
    """The number of CPUs this process may keep busy (at least 1), and why."""
    environ = os.environ if environ is None else environ
    total = os.cpu_count() or 1
    if affinity is None:
        affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else total
    limits = [(affinity, f"affinity ({affinity} of {total})")]
    quota = _cgroup_quota(cgroup_root, proc_cgroup)
    if quota is not None:
        limits.append(quota)
    cpu_limit = _cpu_limit(environ.get("CPU_LIMIT"))
    if cpu_limit is not None:
        limits.append((cpu_limit, f"CPU_LIMIT={environ['CPU_LIMIT']}"))
    count, source = min(limits, key=lambda limit: limit[0])
    return CpuBudget(max(1, count), source)


def _cpu_limit(value: str | None) -> int | None:
    """JupyterHub's ``CPU_LIMIT`` (a float, e.g. ``"0.5"``) as whole CPUs, or None."""
    try:
        limit = float(value) if value else 0.0
    except ValueError:
        return None
    # Threads beyond the quota are throttled, not run: round down, but keep one.
    return max(1, math.floor(limit)) if limit > 0 else None


def _cgroup_quota(root: Path, proc_cgroup: Path) -> tuple[int, str] | None:
    """The tightest CPU quota of this process's cgroup and its ancestors, if any."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    found: list[tuple[int, str]] = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2: "0::/path"
            for directory in _self_and_ancestors(root, path):
                quota = _quota_v2(directory / "cpu.max")
                if quota is not None:
                    found.append(quota)
        elif "cpu" in controllers.split(","):  # cgroup v1: "4:cpu,cpuacct:/path"
            names = ("cpu,cpuacct", "cpu")
            base = next((root / n for n in names if (root / n).is_dir()), None)
            if base is not None:
                for directory in _self_and_ancestors(base, path):
                    quota = _quota_v1(directory)
                    if quota is not None:
                        found.append(quota)
    return min(found, key=lambda q: q[0]) if found else None


def _self_and_ancestors(base: Path, path: str) -> list[Path]:
    """``base/path`` and each parent up to ``base`` (a container sees its own as ``/``)."""
    parts = [p for p in path.strip().split("/") if p]
    return [base.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]


def _quota_v2(file: Path) -> tuple[int, str] | None:
    try:
        quota, period = file.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return _as_cpus(quota, period, f"cgroup cpu.max {quota}/{period}")


def _quota_v1(directory: Path) -> tuple[int, str] | None:
    try:
        quota = (directory / "cpu.cfs_quota_us").read_text().strip()
        period = (directory / "cpu.cfs_period_us").read_text().strip()
    except OSError:
        return None
    return _as_cpus(quota, period, f"cgroup cpu.cfs_quota_us {quota}/{period}")


def _as_cpus(quota: str, period: str, source: str) -> tuple[int, str] | None:
    if quota in ("max", "-1"):
        return None
    try:
        cpus = int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None
    return (max(1, math.floor(cpus)), source) if cpus > 0 else None


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags (``avx2``, ``amx_int8``, ``neon``, ...) as Linux reports them;
    empty where ``/proc/cpuinfo`` does not exist."""
    try:
        with cpuinfo.open() as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def cpu_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name, e.g. ``"Intel(R) Xeon(R) Platinum 8481C"``."""
    try:
        with cpuinfo.open() as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
