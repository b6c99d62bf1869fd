"""Mutation testing of the safety modules (``make mutation``), with mutmut, module by module.

Each module runs in a scratch copy of the repository (mutmut works in its current folder
and writes ``mutants/`` there) against only the test files that pin it, so a module takes
minutes, not the suite's hour. Prints killed / survived per module and the score; the
survivors are listed by ``mutmut results`` in the scratch folder (kept with ``--keep``).
Survivors that are equivalent are explained in tests/mutation_survivors.md.

    python bench/mutation.py [module ...] [--keep]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Module -> the test files that pin it.
MODULES: dict[str, list[str]] = {
    "victor/serve/security.py": ["tests/test_serve_security.py"],
    "victor/_secrets.py": ["tests/test_secrets.py"],
    "victor/notebook/approval.py": [
        "tests/test_approval_fail_closed.py",
        "tests/test_approval_card.py",
    ],
    "victor/tools/approval.py": [
        "tests/test_approval.py",
        "tests/test_approval_fail_closed.py",
        "tests/test_approval_decisions.py",
    ],
    "victor/tools/sandbox.py": [
        "tests/test_sandbox.py",
        "tests/test_sandbox_commands.py",
        "tests/test_hardening.py",
    ],
    "victor/providers/local/guard.py": [
        "tests/test_local_guard_safety.py",
        # The model-free tests of the AMX decision (the rest of that file loads the model).
        "tests/test_local_guard.py::test_the_guard_engages_exactly_when_the_build_has_amx",
        "tests/test_local_guard.py::test_this_machines_build_is_portable",
        "tests/test_local_guard.py::test_an_amx_build_is_guarded_and_says_why_once",
    ],
}


def run_module(module: str, tests: list[str], keep: bool) -> dict[str, int]:
    scratch = Path(tempfile.mkdtemp(prefix="victor-mutation-"))
    for name in ("victor", "tests"):
        shutil.copytree(REPO / name, scratch / name, ignore=shutil.ignore_patterns("__pycache__"))
    config = (REPO / "pyproject.toml").read_text()
    config += (
        "\n[tool.mutmut]\n"
        'source_paths = ["victor"]\n'
        f"only_mutate = [{json.dumps(module)}]\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
        'pytest_add_cli_args = ["-o", "addopts=", "-p", "no:cacheprovider", "-q"]\n'
    )
    (scratch / "pyproject.toml").write_text(config)
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "mutmut", "run"], cwd=scratch, check=False, stdout=subprocess.DEVNULL
    )
    subprocess.run(
        [sys.executable, "-m", "mutmut", "export-cicd-stats"],
        cwd=scratch,
        check=False,
        stdout=subprocess.DEVNULL,
    )
    stats_file = scratch / "mutants" / "mutmut-cicd-stats.json"
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    stats["seconds"] = round(time.monotonic() - started)
    survivors = subprocess.run(
        [sys.executable, "-m", "mutmut", "results"],
        cwd=scratch,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    stats["survivors"] = [
        line.split(":")[0].strip() for line in survivors.splitlines() if "survived" in line
    ]
    if keep:
        print(f"  scratch copy kept: {scratch}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    return stats


def main(argv: list[str]) -> int:
    keep = "--keep" in argv
    chosen = [a for a in argv if not a.startswith("--")] or list(MODULES)
    low = []
    for module in chosen:
        stats = run_module(module, MODULES[module], keep)
        if not any(stats.get(k) for k in ("killed", "survived", "timeout", "no_tests")):
            # mutmut stops before mutating when the tests fail on the unmutated code.
            print(f"{module}: no mutant ran: do {' '.join(MODULES[module])} pass unmutated?")
            low.append(module)
            continue
        killed = stats.get("killed", 0) + stats.get("timeout", 0)
        survived = stats.get("survived", 0)
        tested = killed + survived
        score = 100 * killed / tested if tested else 0.0
        print(
            f"{module}: {killed} killed, {survived} survived, "
            f"{stats.get('no_tests', 0)} without tests: {score:.0f}% in {stats['seconds']} s"
        )
        for name in stats["survivors"]:
            print(f"    survived: {name}")
        if score < 90:
            low.append(module)
    if low:
        print(f"below 90% killed: {', '.join(low)}")
    return 1 if low else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    raise SystemExit(main(sys.argv[1:]))
