"""CI says what ran, and fails when something that must run there did not: a test group
(tests/must_run.py) or a supported Python (the Makefile's test-pythons)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pytest(*args: str, ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "VICTOR_MUST_RUN")}
    env.update(VICTOR_MUST_RUN="browser", **({"CI": "true"} if ci else {}))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("ci", [True, False])
def test_a_group_that_did_not_run_is_named_and_fails_ci(ci: bool) -> None:
    # The run passes, but the browser group was not collected (as when the browser extra
    # or Chromium is missing and its tests are left out).
    ran = _pytest("tests/test_state.py::test_keys_must_be_strings", ci=ci)
    assert "1 passed" in ran.stdout, ran.stdout
    assert "browser: NOT RUN: not collected (tests/test_browser.py)" in ran.stdout
    if ci:
        assert ran.returncode == 1 and "fails the run (CI=true)" in ran.stdout
    else:
        assert ran.returncode == 0 and "would fail with CI=true" in ran.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("ci", [True, False])
def test_a_supported_python_not_found_is_named_and_fails_ci(ci: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    ran = subprocess.run(
        ["make", "--no-print-directory", "test-pythons", "PYTHONS=3.99", "SKIP_PYTHON=",
         f"CI={'true' if ci else ''}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "not found: 3.99" in ran.stdout, ran.stdout + ran.stderr
    if ci:
        assert ran.returncode != 0 and "every supported Python must run" in ran.stderr
    else:
        assert ran.returncode == 0
