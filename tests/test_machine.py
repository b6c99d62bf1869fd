"""CPU budget and portable-build decisions, on faked machines (and this one)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from victor._machine import available_cpus, cpu_flags, cpu_name
from victor.providers.local import build as local_build
from victor.providers.local.build import cmake_args, install_command, rebuild_command, wheel_cache


def cgroup_v2(tmp_path: Path, limits: dict[str, str], path: str = "/kubepods/pod1") -> dict:
    """A fake cgroup v2 tree: ``limits`` maps a cgroup path to its cpu.max line."""
    root = tmp_path / "cgroup"
    for cgroup, line in limits.items():
        folder = root / cgroup.strip("/")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "cpu.max").write_text(line + "\n")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(f"0::{path}\n")
    return {"cgroup_root": root, "proc_cgroup": proc}


def test_binder_like_quota_on_a_big_node(tmp_path):
    # 1 CPU of quota on a 64-CPU node: llama.cpp must not start 32 threads.
    fake = cgroup_v2(tmp_path, {"/kubepods/pod1": "100000 100000"})
    budget = available_cpus(environ={}, affinity=64, **fake)
    assert (budget.count, budget.source) == (1, "cgroup cpu.max 100000/100000")


def test_the_tightest_of_the_cgroup_and_its_ancestors(tmp_path):
    fake = cgroup_v2(
        tmp_path,
        {"/": "max 100000", "/kubepods": "300000 100000", "/kubepods/pod1": "max 100000"},
    )
    assert available_cpus(environ={}, affinity=64, **fake).count == 3


def test_fractional_quota_rounds_down_but_keeps_one(tmp_path):
    fake = cgroup_v2(tmp_path, {"/kubepods/pod1": "250000 100000"})
    assert available_cpus(environ={}, affinity=8, **fake).count == 2
    fake = cgroup_v2(tmp_path, {"/kubepods/pod1": "50000 100000"})
    assert available_cpus(environ={}, affinity=8, **fake).count == 1


def test_cgroup_v1_quota(tmp_path):
    folder = tmp_path / "cgroup" / "cpu,cpuacct" / "docker" / "abc"
    folder.mkdir(parents=True)
    (folder / "cpu.cfs_quota_us").write_text("200000\n")
    (folder / "cpu.cfs_period_us").write_text("100000\n")
    proc = tmp_path / "cgroup-file"
    proc.write_text("4:cpu,cpuacct:/docker/abc\n3:memory:/docker/abc\n")
    budget = available_cpus(environ={}, affinity=16, cgroup_root=tmp_path / "cgroup",
                            proc_cgroup=proc)  # fmt: skip
    assert (budget.count, budget.source) == (2, "cgroup cpu.cfs_quota_us 200000/100000")


def test_jupyterhub_cpu_limit(tmp_path):
    none = {"cgroup_root": tmp_path, "proc_cgroup": tmp_path / "missing"}
    assert available_cpus(environ={"CPU_LIMIT": "1.0"}, affinity=64, **none).count == 1
    assert available_cpus(environ={"CPU_LIMIT": "0.5"}, affinity=64, **none).count == 1
    budget = available_cpus(environ={"CPU_LIMIT": "8"}, affinity=2, **none)
    assert (budget.count, budget.source) == (2, "affinity (2 of " + str(os.cpu_count()) + ")")
    # Nonsense is ignored, not an error at import or load time.
    assert available_cpus(environ={"CPU_LIMIT": "lots"}, affinity=3, **none).count == 3


def test_affinity_alone_and_this_machine(tmp_path):
    none = {"cgroup_root": tmp_path, "proc_cgroup": tmp_path / "missing"}
    assert available_cpus(environ={}, affinity=5, **none).count == 5
    real = available_cpus()
    assert 1 <= real.count <= (os.cpu_count() or 1)
    assert real.source


def test_cpu_facts_from_proc_cpuinfo(tmp_path):
    intel = tmp_path / "cpuinfo"
    intel.write_text(
        "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz\n"
        "flags\t\t: fpu sse4_2 avx avx2 avx512f amx_tile amx_int8 amx_bf16\n"
    )
    assert {"avx2", "amx_int8"} <= cpu_flags(intel)
    assert cpu_name(intel).startswith("Intel(R) Xeon(R) Platinum 8481C")
    arm = tmp_path / "cpuinfo-arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd evtstrm aes\n")
    assert "asimd" in cpu_flags(arm)
    assert cpu_flags(tmp_path / "none") == frozenset()


@pytest.mark.parametrize(
    ("machine", "flags", "expected"),
    [
        ("x86_64", {"avx", "avx2", "avx512f", "amx_int8"}, "-DGGML_NATIVE=OFF"),
        ("x86_64", {"avx", "avx2"}, "-DGGML_NATIVE=OFF"),
        (
            "x86_64",
            {"sse4_2", "avx"},
            "-DGGML_NATIVE=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF",
        ),
        ("aarch64", {"asimd"}, "-DGGML_NATIVE=OFF"),
    ],
)
def test_portable_build_flags(machine, flags, expected):
    assert cmake_args(machine, frozenset(flags)) == expected
    assert "native" not in expected.replace("NATIVE=OFF", "") and "AMX" not in expected


def test_commands_users_are_given(monkeypatch):
    monkeypatch.setattr(local_build, "cpu_flags", lambda: frozenset({"avx2"}))
    assert install_command() == (
        'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --no-cache-dir "victor-ai[local]"'
    )
    line = rebuild_command("0.3.36")
    # --no-cache-dir: pip's wheel cache is keyed by the sdist, not by CMAKE_ARGS.
    for part in ('CMAKE_ARGS="-DGGML_NATIVE=OFF"', "--force-reinstall", "--no-cache-dir",
                 "--no-binary llama-cpp-python", '"llama-cpp-python==0.3.36"'):  # fmt: skip
        assert part in line


def test_one_cached_wheel_per_version_and_flags(monkeypatch, tmp_path):
    monkeypatch.setenv("VICTOR_WHEEL_CACHE", str(tmp_path))
    a = wheel_cache("0.3.36", "-DGGML_NATIVE=OFF")
    assert a.parent == tmp_path and a.name.startswith("llama-cpp-python-0.3.36-")
    assert wheel_cache("0.3.36", "-DGGML_NATIVE=OFF") == a
    assert wheel_cache("0.3.36", "-DGGML_NATIVE=OFF -DGGML_AVX2=OFF") != a
    assert wheel_cache("0.3.37", "-DGGML_NATIVE=OFF") != a
