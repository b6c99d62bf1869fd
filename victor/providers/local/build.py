"""Building llama-cpp-python portably, so that one build runs on every CPU of its kind.

pip compiles llama-cpp-python from source, and llama.cpp builds for the machine it is built
on (``-march=native``) by default. Such a build can crash elsewhere ("Illegal instruction"
on a CPU without an instruction it uses; a Binder image built on one node and started on
another) and takes code paths that crash on the machine itself (llama.cpp's AMX matrix
multiply on Sapphire Rapids and newer Xeons). ``-DGGML_NATIVE=OFF`` turns both off: on
x86-64 llama.cpp then targets SSE4.2, AVX, AVX2, FMA, F16C and BMI2 (any x86-64 CPU since
2013), with no AVX-512 and no AMX; on a CPU without AVX2 the AVX2 generation is turned off too.

``python -m victor.providers.local.build`` (what ``make install``, ``make demo`` and Binder
run) builds the wheel once into a cache keyed by the version *and* the flags, and installs
exactly that wheel: pip's own wheel cache is keyed by the sdist alone, so it would quietly
hand back a wheel built earlier with other flags.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from ..._machine import cpu_flags

__all__ = [
    "LLAMA_CPP_VERSION",
    "cmake_args",
    "install_command",
    "rebuild_command",
    "wheel_cache",
]

#: The llama-cpp-python release the project builds and tests.
LLAMA_CPP_VERSION = "0.3.36"
PORTABLE = "-DGGML_NATIVE=OFF"
#: x86-64 instruction sets llama.cpp enables when not native, newer than AVX.
_AVX2_GENERATION = ("AVX2", "FMA", "F16C", "BMI2")


def cmake_args(machine: str | None = None, flags: frozenset[str] | None = None) -> str:
    """The ``CMAKE_ARGS`` of a portable llama.cpp build for this kind of CPU."""
    machine = (machine or platform.machine()).lower()
    flags = cpu_flags() if flags is None else flags
    if machine in ("x86_64", "amd64") and flags and "avx2" not in flags:
        # An older CPU: build for what it has, or the build dies with SIGILL here.
        return " ".join([PORTABLE, *(f"-DGGML_{name}=OFF" for name in _AVX2_GENERATION)])
    return PORTABLE


def install_command() -> str:
    """The line that installs victor with a portable local model, for a user's own pip."""
    return f'CMAKE_ARGS="{cmake_args()}" pip install --no-cache-dir "victor-ai[local]"'


def rebuild_command(version: str | None = None) -> str:
    """The line that replaces an installed llama-cpp-python with a portable build."""
    version = version or _installed_version() or LLAMA_CPP_VERSION
    return (
        f'CMAKE_ARGS="{cmake_args()}" pip install --force-reinstall --no-deps --no-cache-dir '
        f'--no-binary llama-cpp-python "llama-cpp-python=={version}"'
    )


def wheel_cache(version: str = LLAMA_CPP_VERSION, args: str | None = None) -> Path:
    """Where the wheel built with ``args`` is kept: one folder per version and flags."""
    args = cmake_args() if args is None else args
    root = os.environ.get("VICTOR_WHEEL_CACHE") or (
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "victor" / "wheels"
    )
    # The wheel calls llama.cpp through ctypes: one build serves every Python version.
    tag = hashlib.sha256(args.encode()).hexdigest()[:12]
    return Path(root) / f"llama-cpp-python-{version}-{tag}"


def _installed_version() -> str | None:
    try:
        return metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError:
        return None


def _installed_from() -> str | None:
    """The URL pip installed llama-cpp-python from (PEP 610), if it was a file."""
    try:
        text = metadata.distribution("llama-cpp-python").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    return json.loads(text).get("url") if text else None


def build_wheel(version: str, args: str) -> Path:
    """The portable wheel for ``version``, built now unless the cache has it."""
    folder = wheel_cache(version, args)
    wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    if wheels:
        return wheels[-1]
    print(
        f"victor: building llama-cpp-python {version} portably (CMAKE_ARGS={args!r}); "
        f"this compiles llama.cpp once per machine, a few minutes",
        flush=True,
    )
    folder.parent.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"CMAKE_ARGS": args}
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 1))
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-cache-dir",
             "--no-binary", "llama-cpp-python", "--wheel-dir", scratch,
             f"llama-cpp-python=={version}"],
            env=env,
            check=True,
        )  # fmt: skip
        built = Path(scratch)
        # Publish the folder whole, so a killed build never leaves a half-written wheel
        # (and a concurrent build that finished first wins).
        try:
            built.rename(folder)
            built.mkdir()  # for TemporaryDirectory to remove
        except OSError:
            if not any(folder.glob("llama_cpp_python-*.whl")):
                raise
    return sorted(folder.glob("llama_cpp_python-*.whl"))[-1]


def install(version: str = LLAMA_CPP_VERSION, args: str | None = None) -> Path:
    """Build (or take from the cache) the portable wheel and install exactly that wheel."""
    args = cmake_args() if args is None else args
    wheel = build_wheel(version, args)
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    if _installed_from() != wheel.as_uri():
        # Replace whatever build is installed, but not its dependencies...
        subprocess.run([*pip, "--no-deps", "--force-reinstall", str(wheel)], check=True)
    # ...and bring those that are missing.
    subprocess.run([*pip, str(wheel)], check=True)
    return wheel


def _check_installed() -> str:
    """llama.cpp's own report of the installed build; fails if it is not portable."""
    report = subprocess.run(
        [sys.executable, "-c",
         "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if "AMX_INT8 = 1" in report:
        raise SystemExit(f"victor: the installed llama-cpp-python uses AMX: {report}")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m victor.providers.local.build",
        description="Build llama-cpp-python portably (cached per version and flags) and "
        "install it.",
    )
    parser.add_argument("--version", default=LLAMA_CPP_VERSION, help="llama-cpp-python version")
    parser.add_argument(
        "--print-args", action="store_true", help="print the CMAKE_ARGS for this machine and stop"
    )
    options = parser.parse_args(argv)
    if options.print_args:
        print(cmake_args())
        return 0
    wheel = install(options.version)
    print(f"victor: llama-cpp-python from {wheel.name}: {_check_installed()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
