"""Which test groups ran: a summary at the end of the run, failing it in CI when one that
must run there was skipped or not collected.

``make test`` names the groups in ``VICTOR_MUST_RUN`` (``browser,ray,...``). Each group is
a set of node-id prefixes; it ran when at least one of its tests ran and none skipped (a
skip at import, such as a missing extra, counts). With ``CI=true`` a group that did not
run fails the run (exit status 1); elsewhere the summary says so and the run stands.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest

#: Group name -> node-id prefixes of its tests.
GROUPS: dict[str, tuple[str, ...]] = {
    "browser": ("tests/test_browser.py",),
    "ray": ("tests/test_ray_batch.py",),
    "pandas": (
        "tests/test_batch.py::test_results_as_a_dataframe",
        "tests/test_batch_evaluate.py::test_two_variants_side_by_side",
    ),
    "local": (
        "tests/test_provider_local.py",
        "tests/test_local_guard.py",
        "tests/test_output_local.py",
        "tests/test_cassette_local.py",
        "tests/test_acp.py::test_the_embedded_model_answers_over_acp",
    ),
    "acp": (
        "tests/test_acp.py",
        "tests/test_acp_jupyter_ai.py",
        "tests/test_acp_transcript.py",
    ),
    "binder": ("tests/test_binder.py::test_replay_of_the_binder_build_runs_every_notebook",),
    # Skips itself without opentelemetry-instrumentation-httpx (in `dev`).
    "telemetry": ("tests/test_telemetry_trace.py",),
}


@dataclass
class Tally:
    ran: int = 0
    skipped: list[str] = field(default_factory=list)  # "node id: reason"


def required() -> list[str]:
    names = [n.strip() for n in os.environ.get("VICTOR_MUST_RUN", "").split(",") if n.strip()]
    unknown = sorted(set(names) - set(GROUPS))
    if unknown:
        raise pytest.UsageError(
            f"VICTOR_MUST_RUN names unknown groups {unknown}: use {list(GROUPS)}"
        )
    return names


def strict() -> bool:
    return os.environ.get("CI", "").lower() == "true"


_tallies: dict[str, Tally] = {}


def _record(nodeid: str, outcome: str, longrepr: object) -> None:
    for name in required():
        if any(
            nodeid.startswith(prefix) or prefix.startswith(nodeid + "::") for prefix in GROUPS[name]
        ):
            tally = _tallies.setdefault(name, Tally())
            if outcome == "skipped":
                reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
                tally.skipped.append(f"{nodeid}: {reason}")
            else:
                tally.ran += 1


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.outcome == "skipped":  # a whole module skipped at import (importorskip)
        _record(report.nodeid, "skipped", report.longrepr)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # A test that errors in setup counts as run: the error fails the run by itself.
    if report.when == "call" or report.outcome != "passed":
        _record(report.nodeid, report.outcome, report.longrepr)


def missing() -> dict[str, str]:
    """Required groups that did not run, with why."""
    why = {}
    for name in required():
        tally = _tallies.get(name, Tally())
        if tally.skipped:
            why[name] = f"skipped ({tally.skipped[0]})"
        elif not tally.ran:
            why[name] = "not collected (" + ", ".join(GROUPS[name]) + ")"
    return why


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if missing() and strict() and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 - pytest's reporter
    names = required()
    if not names:
        return
    absent = missing()
    write = terminalreporter.write_line
    terminalreporter.section("test groups that must run")
    for name in names:
        tally = _tallies.get(name, Tally())
        write(f"{name}: " + (f"NOT RUN: {absent[name]}" if name in absent else f"{tally.ran} ran"))
    if absent:
        verdict = "fails the run (CI=true)" if strict() else "would fail with CI=true"
        write(f"missing groups: {', '.join(absent)}: this {verdict}", red=True, bold=True)
