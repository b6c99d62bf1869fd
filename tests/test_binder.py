"""Binder: the configuration in binder/ is what repo2docker expects, and it really works.

Three checks: the files are consistent with pyproject.toml and with victor's portable llama.cpp
build; repo2docker (``--no-build``, no Docker daemon needed) renders a Dockerfile that installs
the pinned requirements in a layer of their own, runs postBuild and starts through
binder/start; and a replay of the image's steps in a fresh virtual environment runs every
notebook with no key, ``CPU_LIMIT=1`` and less than Binder's 2 GB of memory.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from victor._machine import cpu_flags
from victor.providers.local import build as local_build

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / "binder"
#: What the notebooks need: the core dependencies and these extras (02-tools runs pytest,
#: coverage and ruff through the tools extra; 07 serves an agent and connects MCP servers).
NOTEBOOK_EXTRAS = ("notebook", "local", "tools", "otel", "serve", "mcp")
#: Binder's memory limit per user (mybinder.org: 2 GB).
BINDER_MEMORY = 2 * 1024**3


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _binder_python() -> tuple[int, int]:
    version = (BINDER / "runtime.txt").read_text().strip().removeprefix("python-")
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def _requirement_lines() -> list[str]:
    lines = []
    for raw in (BINDER / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def _pins() -> dict[str, tuple[Requirement, list[str]]]:
    """Each requirement of binder/requirements.txt by name, with its per-requirement options."""
    pins = {}
    for line in _requirement_lines():
        if line.startswith("-"):
            continue  # a global option, e.g. --no-binary
        spec, *options = shlex.split(line)
        requirement = Requirement(spec)
        pins[canonicalize_name(requirement.name)] = (requirement, options)
    return pins


# -- the files ---------------------------------------------------------------------------------


def test_requirements_are_pinned_third_party_packages():
    pins = _pins()
    assert pins
    for requirement, _ in pins.values():
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", (
            f"{requirement} is not pinned with =="
        )
        assert not requirement.url and not requirement.extras, requirement
    assert canonicalize_name(_project()["name"]) not in pins, "postBuild installs victor itself"
    for line in _requirement_lines():
        # Local references (-e ., paths, -r/-c files) make repo2docker copy the whole
        # repository first, and the heavy layer would be rebuilt on every commit.
        assert not re.match(r"(-e|--editable|-r|--requirement|-c|--constraint)\b", line), line
        assert not re.search(r"(^|\s|=)(\.|/|file:)", line), line


def test_requirements_cover_what_the_notebooks_need():
    project = _project()
    needed = list(project["dependencies"])
    for extra in NOTEBOOK_EXTRAS:
        needed += project["optional-dependencies"][extra]
    pins = _pins()
    python = ".".join(map(str, _binder_python()))
    for spec in needed:
        requirement = Requirement(spec)
        if requirement.marker and not requirement.marker.evaluate({"python_version": python}):
            continue
        if canonicalize_name(requirement.name) == canonicalize_name(project["name"]):
            continue
        pinned = pins.get(canonicalize_name(requirement.name))
        assert pinned, f"binder/requirements.txt lacks {requirement.name} ({spec})"
        version = next(iter(pinned[0].specifier)).version
        assert requirement.specifier.contains(version, prereleases=True), (
            f"binder/requirements.txt pins {pinned[0]}, but pyproject.toml asks for {spec}"
        )


def test_llama_cpp_is_built_portably_with_victors_flags():
    requirement, options = _pins()["llama-cpp-python"]
    assert str(requirement.specifier) == f"=={local_build.LLAMA_CPP_VERSION}"
    settings = [o.removeprefix("--config-settings=") for o in options]
    assert all(o.startswith("--config-settings=") for o in options), options
    args = [s.removeprefix("cmake.args=") for s in settings if s.startswith("cmake.args=")]
    assert len(args) == 1, f"one cmake.args config setting, not {settings}"
    # scikit-build-core splits a list setting on ';'; CMAKE_ARGS is space-separated.
    flags = args[0].split(";")
    # Binder's nodes are x86-64 with AVX2: the flags victor itself builds with there.
    expected = local_build.cmake_args("x86_64", frozenset({"avx2"}))
    assert expected == local_build.PORTABLE
    assert flags == expected.split()
    # Built from source whatever an index offers, so the flags always apply.
    assert "--no-binary llama-cpp-python" in _requirement_lines()


def test_post_build_installs_victor_and_assembles_the_model():
    post_build = BINDER / "postBuild"
    assert post_build.stat().st_mode & 0o111, "postBuild must be executable"
    text = post_build.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert re.search(r"^set -euo pipefail$", text, re.M)
    assert re.search(r"^python -m pip install [^\n]*--no-deps -e \.$", text, re.M)
    assert re.search(r"^\./binder/start python -c [^\n]*bundled_model_path\(\)", text, re.M)


def test_start_sets_victor_home_and_execs_its_arguments():
    start = BINDER / "start"
    assert start.stat().st_mode & 0o111, "start must be executable"
    text = start.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert re.search(r"^\s*export VICTOR_HOME=", text, re.M)
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert lines[-1] == 'exec "$@"'


def test_start_runs_its_command_with_victor_home(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "VICTOR_HOME"}
    env["KERNEL_PYTHON_PREFIX"] = str(tmp_path)
    result = subprocess.run(
        [str(BINDER / "start"), "bash", "-c", 'echo "$VICTOR_HOME" "$0"', "arg"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert result.stdout.split() == [str(tmp_path / "share" / "victor"), "arg"]
    env["VICTOR_HOME"] = str(tmp_path / "mine")
    result = subprocess.run(
        [str(BINDER / "start"), "printenv", "VICTOR_HOME"], env=env, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    assert result.stdout.strip() == str(tmp_path / "mine"), "a deployment's VICTOR_HOME wins"


def test_binder_python_is_supported():
    minimum = _project()["requires-python"]
    assert _binder_python() >= tuple(map(int, minimum.lstrip(">=").split(".")))


# -- the Dockerfile repo2docker renders ---------------------------------------------------------


def test_repo2docker_renders_a_dockerfile_with_a_cached_requirements_layer(tmp_path):
    # jupyter-repo2docker, from the dev extra: CI runs this, so it is never skipped.
    with warnings.catch_warnings():  # its logger imports a moved python-json-logger module
        warnings.simplefilter("ignore", DeprecationWarning)
        from repo2docker.buildpacks.base import BuildPack

    # --no-build renders the Dockerfile and stops: no Docker daemon is contacted; --debug
    # prints it on stdout.
    result = subprocess.run(
        [sys.executable, "-m", "repo2docker", "--no-build", "--debug", str(REPO)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    dockerfile = result.stdout
    lines = [line.strip() for line in dockerfile.splitlines()]

    def index(pattern: str) -> int:
        found = [i for i, line in enumerate(lines) if re.search(pattern, line)]
        assert len(found) == 1, f"{pattern!r} matches {len(found)} lines of:\n{dockerfile}"
        return found[0]

    # Python 3.11, from repo2docker's locked conda environment, which also brings JupyterLab.
    minor = ".".join(map(str, _binder_python()))
    assert f"Building conda environment for python={minor}" in result.stderr
    lock = _conda_lock(minor)
    assert re.search(r"/jupyterlab-4\.", lock.read_text()), "no JupyterLab in the environment"
    context_name = BuildPack.generate_build_context_filename(str(lock))[0]
    index(rf"^COPY .*{re.escape(context_name)} /tmp/env/environment\.lock$")

    # requirements.txt alone is copied and installed before the repository: that layer is
    # rebuilt only when the file changes. pip runs without its wheel cache, so the
    # llama-cpp-python line is built with its own config settings.
    copy_requirements = index(r"^COPY .*src/binder/requirements\.txt \$\{REPO_DIR\}/binder/")
    install = index(r'^RUN \$\{KERNEL_PYTHON_PREFIX\}/bin/pip install --no-cache-dir -r "binder/')
    copy_repository = index(r"^COPY .*src/ \$\{REPO_DIR\}/$")
    assert copy_requirements < install < copy_repository
    assert not any(re.search(r"pip install .* \.$", line) for line in lines)
    # Then postBuild, with the whole repository there.
    assert copy_repository < index(r"^RUN \./binder/postBuild$")
    # And binder/start wraps the command every container starts.
    index(r'^ENV R2D_ENTRYPOINT="\$\{REPO_DIR\}/binder/start"$')
    assert index(r'^ENTRYPOINT \["/usr/local/bin/repo2docker-entrypoint"\]$') > copy_repository
    # binder/start puts VICTOR_HOME in this environment, the one requirements.txt goes into.
    index(r"^ENV KERNEL_PYTHON_PREFIX=")


def _conda_lock(python: str) -> Path:
    """repo2docker's locked conda environment for this Python and CPU."""
    platform_name = "linux-aarch64" if platform.machine() in ("aarch64", "arm64") else "linux-64"
    import repo2docker

    lock = Path(repo2docker.__file__).parent / "buildpacks" / "conda"
    return lock / f"environment.py-{python}-{platform_name}.lock"


# -- the replay --------------------------------------------------------------------------------

#: Runs a command and samples the resident memory of its whole process tree from /proc.
MEMWATCH = textwrap.dedent(
    """
    import json, os, resource, subprocess, sys, time

    report, command = sys.argv[1], sys.argv[2:]
    page = os.sysconf("SC_PAGE_SIZE")

    def tree(root):
        children = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(entry))
        found, todo = [], [root]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def rss(pid):
        try:
            with open(f"/proc/{pid}/statm") as f:
                return int(f.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            return 0

    child = subprocess.Popen(command)
    peak = peak_single = 0
    per_process = {}
    while child.poll() is None:
        sizes = {pid: rss(pid) for pid in tree(child.pid)}
        peak = max(peak, sum(sizes.values()))
        for pid, size in sizes.items():
            per_process[pid] = max(per_process.get(pid, 0), size)
        time.sleep(0.05)
    peak_single = max(per_process.values(), default=0)
    with open(report, "w") as f:
        json.dump({
            "peak_tree": peak,
            "peak_process": peak_single,
            # Linux: kilobytes, the largest single descendant that was waited for.
            "ru_maxrss_children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
        }, f)
    sys.exit(child.returncode)
    """
)

#: Variables that could reach a real model, point at this machine's setup, or steer pytest.
_STRIPPED = re.compile(
    r"^(ANTHROPIC_|OPENAI_|OLLAMA_|VICTOR_|GEMINI_|GOOGLE_|MISTRAL_|GROQ_|AZURE_|HF_|PYTEST_"
    r"|VIRTUAL_ENV|CONDA_|JUPYTER_|IPYTHON|PYTHONPATH$|PYTHONHOME$|CPU_LIMIT$)"
    r"|API_KEY|_TOKEN$|SECRET"
)


def _binder_env(tmp_path: Path, prefix: Path) -> dict[str, str]:
    """The environment of the image: its Python first on PATH, a fresh HOME, no keys."""
    pip_cache = os.environ.get("PIP_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pip"
    )
    # No other virtual environment on PATH (make test puts .venv/bin first): only the image's.
    path = [
        entry
        for entry in os.environ.get("PATH", "").split(os.pathsep)
        if entry and not (Path(entry).parent / "pyvenv.cfg").exists()
    ]
    env = {k: v for k, v in os.environ.items() if not _STRIPPED.search(k)}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return env | {
        "HOME": str(home),
        "PATH": os.pathsep.join([str(prefix / "bin"), *path]),
        # What repo2docker's Dockerfile sets (one environment for the server and the kernel).
        "NB_PYTHON_PREFIX": str(prefix),
        "KERNEL_PYTHON_PREFIX": str(prefix),
        "REPO_DIR": str(REPO),
        "PIP_CACHE_DIR": pip_cache,  # keep pip's downloads: the test should not refetch
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        # Binder limits each user to about one CPU; JupyterHub says so in CPU_LIMIT.
        "CPU_LIMIT": "1",
    }


def _run(command: list[str], env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, (
        f"{shlex.join(command)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result


@pytest.mark.timeout(1800)
@pytest.mark.skipif(
    sys.version_info[:2] != _binder_python(),
    reason="the replay uses binder/runtime.txt's Python, to reuse the portable llama.cpp wheel",
)
def test_replay_of_the_binder_build_runs_every_notebook(tmp_path):
    started = time.monotonic()
    prefix = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--upgrade-deps", str(prefix)], check=True,
                   capture_output=True)  # fmt: skip
    python = str(prefix / "bin" / "python")
    env = _binder_env(tmp_path, prefix)

    # 1. binder/requirements.txt. Its llama-cpp-python line compiles llama.cpp portably
    # (about 15 minutes here); the same build, made once by `make llama`, is installed first,
    # so pip finds the pinned version already satisfied.
    wheel = local_build.build_wheel(local_build.LLAMA_CPP_VERSION, local_build.cmake_args())
    _run([python, "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)], env)
    _run([python, "-m", "pip", "install", "--quiet", "-r", "binder/requirements.txt"], env)
    source = _run([python, "-c", "import json, importlib.metadata as m; print(json.loads("
                   "m.distribution('llama-cpp-python').read_text('direct_url.json'))['url'])"],
                  env).stdout.strip()  # fmt: skip
    assert source == wheel.as_uri(), "pip replaced the portable llama-cpp-python build"

    # 2. postBuild, from the repository root, as repo2docker runs it.
    post_build = _run(["./binder/postBuild"], env).stdout
    victor_home = prefix / "share" / "victor"
    model = Path(re.search(r"^bundled model: (.+)$", post_build, re.M).group(1))
    assert model.parent == victor_home / "models" and model.is_file()
    model_mtime = model.stat().st_mtime_ns

    # 3. The running container: binder/start sets VICTOR_HOME; threads follow CPU_LIMIT.
    facts = json.loads(_run(["./binder/start", "python", "-c", textwrap.dedent("""
        import json, os, llama_cpp
        from victor.providers.local.provider import LocalProvider
        provider = LocalProvider()
        print(json.dumps({
            "home": os.environ["VICTOR_HOME"],
            "model": str(provider.model_file()),
            "threads": provider.load_settings["n_threads"],
            "system": llama_cpp.llama_print_system_info().decode(),
        }))
    """)], env).stdout)  # fmt: skip
    assert facts["home"] == str(victor_home)
    assert facts["model"] == str(model)
    assert facts["threads"] == 1, facts
    assert "AMX_INT8 = 1" not in facts["system"], facts["system"]
    if "avx512f" in cpu_flags():
        assert "AVX512 = 1" not in facts["system"], f"not the portable build: {facts['system']}"

    # 4. Every notebook, on a kernel of the image's Python (pytest and nbval drive it from
    # outside, so the image's environment holds only what Binder installs), under the memory
    # watch.
    kernels = tmp_path / "jupyter" / "kernels" / "binder"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Binder replay", "language": "python",
    }))  # fmt: skip
    env["JUPYTER_PATH"] = str(tmp_path / "jupyter")
    memwatch, report = tmp_path / "memwatch.py", tmp_path / "memory.json"
    memwatch.write_text(MEMWATCH)
    notebooks = sorted(str(p.relative_to(REPO)) for p in (REPO / "notebooks").glob("*.ipynb"))
    assert notebooks
    ran = subprocess.run(
        ["./binder/start", sys.executable, str(memwatch), str(report),
         sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=",
         "--nbval-lax", "--nbval-kernel-name", "binder", "-q", *notebooks],
        cwd=REPO, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert ran.returncode == 0, (
        f"notebooks failed in the Binder replay:\n{ran.stdout}\n{ran.stderr}"
    )
    summary = ran.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and "failed" not in summary, summary
    assert model.stat().st_mtime_ns == model_mtime, "the notebooks assembled the model again"

    memory = json.loads(report.read_text())
    mb = {k: round(v / 1024**2) for k, v in memory.items()}
    print(
        f"\nBinder replay: {len(notebooks)} notebooks ({summary}), CPU_LIMIT=1, "
        f"{time.monotonic() - started:.0f} s in all; peak memory of the notebook processes "
        f"{mb['peak_tree']} MB together (largest single process {mb['peak_process']} MB, "
        f"ru_maxrss {mb['ru_maxrss_children']} MB); Binder allows {BINDER_MEMORY // 1024**2} MB"
    )
    assert memory["peak_tree"] < BINDER_MEMORY
    assert memory["ru_maxrss_children"] < BINDER_MEMORY
