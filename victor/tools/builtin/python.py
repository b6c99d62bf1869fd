"""Python tools: run_python (a child process), run_tests (pytest) and run_coverage (coverage.py).

All run ``sys.executable`` (the interpreter victor runs in, with its packages) with the
workspace as working directory, through the workspace's executor. Test results come
from pytest's JUnit XML report, so counts and failures are structured data, not text to
scrape.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

from ...errors import ToolError
from ..base import ToolResult, tool
from ..context import current_context
from ..executor import CommandResult
from ..sandbox import Workspace

__all__ = ["run_python", "run_tests", "run_coverage", "require_module"]

_DETAIL_CHARS = 2000  # of each failure's traceback: enough to act on, not a flood


def require_module(module: str, package: str | None = None) -> None:
    """``ToolError`` naming what to ``pip install`` if ``module`` is missing."""
    if importlib.util.find_spec(module) is None:
        raise ToolError(
            f"{module} is not installed in {sys.executable}: pip install {package or module}"
        )


@tool(requires_approval=True)
async def run_python(
    code: str | None = None,
    file_path: str | None = None,
    args: list[str] | None = None,
    timeout: float | None = None,
) -> ToolResult:
    """Run Python code or a script in a separate Python process, in the workspace.

    Returns the exit code, stdout and stderr. Nothing runs inside the agent's process.

    Args:
        code: Python source to run (like python -c).
        file_path: A script in the workspace to run instead of code.
        args: Command-line arguments for the script or code (sys.argv[1:]).
        timeout: Seconds before the process is killed (default: the workspace's).
    """
    workspace = current_context().workspace
    if (code is None) == (file_path is None):
        raise ToolError("give exactly one of code or file_path")
    if file_path is not None:
        target = workspace.resolve(file_path)
        if not target.is_file():
            raise ToolError(f"there is no script {file_path!r} in the workspace")
        argv = [sys.executable, str(target)]
    else:
        argv = [sys.executable, "-c", code]  # type: ignore[list-item]
    result = await workspace.run([*argv, *(args or [])], timeout=timeout)
    return result.to_tool_result()


@tool(requires_approval=True)
async def run_tests(
    path: str = "",
    keyword: str | None = None,
    extra_args: list[str] | None = None,
    timeout: float | None = None,
) -> ToolResult:
    """Run the workspace's tests with pytest and report passed/failed counts and failures.

    Success means the tests ran; look at 'failed' and 'errors' to see whether they
    passed. Each failure has the test id, a message and the end of its traceback.

    Args:
        path: A test file, directory or test id (e.g. 'tests/test_auth.py::test_login');
            empty for all tests.
        keyword: Only tests matching this pytest -k expression.
        extra_args: More pytest arguments, e.g. ['-x'].
        timeout: Seconds before the run is killed (default: the workspace's).
    """
    require_module("pytest")
    workspace = current_context().workspace
    with tempfile.TemporaryDirectory(prefix="victor-tests-") as scratch:
        report = Path(scratch, "junit.xml")
        argv = [
            sys.executable,
            "-m",
            "pytest",
            *_pytest_args(workspace, path, keyword, extra_args, report),
        ]
        result = await workspace.run(argv, timeout=timeout)
        return _test_report(result, report)


@tool(requires_approval=True)
async def run_coverage(
    path: str = "",
    source: str = ".",
    timeout: float | None = None,
) -> ToolResult:
    """Run the tests under coverage.py and report line coverage per file and in total.

    Args:
        path: A test file, directory or test id; empty for all tests.
        source: Directory (relative to the workspace) whose code is measured.
        timeout: Seconds before the run is killed (default: the workspace's).
    """
    require_module("pytest")
    require_module("coverage")
    workspace = current_context().workspace
    measured = workspace.resolve(source)
    with tempfile.TemporaryDirectory(prefix="victor-coverage-") as scratch:
        data, report, junit = (
            Path(scratch, ".coverage"),
            Path(scratch, "coverage.json"),
            Path(scratch, "junit.xml"),
        )
        env = {"COVERAGE_FILE": str(data)}  # keeps coverage's data file out of the workspace
        argv = [
            sys.executable,
            "-m",
            "coverage",
            "run",
            f"--source={measured}",
            "-m",
            "pytest",
            *_pytest_args(workspace, path, None, None, junit),
        ]
        ran = await workspace.run(argv, timeout=timeout, env=env)
        tests = _test_report(ran, junit)
        if not tests.success:
            return tests
        json_run = await workspace.run(
            [sys.executable, "-m", "coverage", "json", "-o", str(report), "-q"], env=env
        )
        if not report.exists():
            return ToolResult.fail(f"coverage could not write its report: {json_run.to_text()}")
        covered = json.loads(report.read_text())
    files = {
        _display_path(workspace, name): {
            "percent": round(info["summary"]["percent_covered"], 1),
            "statements": info["summary"]["num_statements"],
            "missing_lines": info["missing_lines"],
        }
        for name, info in sorted(covered["files"].items())
    }
    output = {
        "total_percent": round(covered["totals"]["percent_covered"], 1),
        "files": files,
        "tests": {k: tests.output[k] for k in ("passed", "failed", "errors", "skipped")},
    }
    return ToolResult(success=True, output=output)


def _pytest_args(
    workspace: Workspace, path: str, keyword: str | None, extra: list[str] | None, report: Path
) -> list[str]:
    args = ["-q", "-p", "no:cacheprovider", f"--junitxml={report}", "-o", "junit_family=xunit1"]
    if path:
        file_part = path.split("::", 1)[0]
        workspace.resolve(file_part)  # test ids name files: keep them in the workspace
        args.append(path)
    if keyword:
        args += ["-k", keyword]
    for arg in extra or []:
        if arg.startswith(("--junitxml", "--rootdir", "-p", "--basetemp", "-c")):
            raise ToolError(f"pytest argument {arg!r} is managed by run_tests and cannot be passed")
        args.append(arg)
    return args


def _test_report(result: CommandResult, report: Path) -> ToolResult:
    """pytest's outcome as counts and failures; a failed run (not failing tests) is an error."""
    if result.timed_out:
        return ToolResult.fail(
            f"the tests did not finish in time and were stopped\n{result.to_text()}"
        )
    # pytest exit codes: 0 all passed, 1 some failed, 2 interrupted/collection errors,
    # 5 nothing collected; 3 and 4 mean pytest itself could not run.
    if result.exit_code not in (0, 1, 2, 5) or not report.exists():
        return ToolResult.fail(
            f"pytest could not run the tests\n{result.to_text()}", exit_code=result.exit_code
        )
    root = ElementTree.parse(report).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    failures = []
    for suite in suites:
        for case in suite.iter("testcase"):
            test_id = _test_id(case)
            problem = next((c for c in case if c.tag in ("failure", "error")), None)
            if problem is not None:
                counts["failed" if problem.tag == "failure" else "errors"] += 1
                details = (problem.text or "").strip()
                failures.append(
                    {
                        "test": test_id,
                        "kind": problem.tag,
                        "message": (problem.get("message") or "").strip()[:500],
                        "details": details[-_DETAIL_CHARS:],
                    }
                )
            elif case.find("skipped") is not None:
                counts["skipped"] += 1
            else:
                counts["passed"] += 1
    output: dict[str, Any] = {
        **counts,
        "total": sum(counts.values()),
        "ok": counts["failed"] == 0 and counts["errors"] == 0 and result.exit_code in (0, 5),
        "failures": failures,
        "exit_code": result.exit_code,
    }
    if result.exit_code == 5:
        output["note"] = "no tests were collected"
    elif result.exit_code == 2 and not failures:
        output["note"] = result.stdout[-_DETAIL_CHARS:]
    return ToolResult(success=True, output=output)


def _test_id(case: ElementTree.Element) -> str:
    file = case.get("file")
    classname, name = case.get("classname", ""), case.get("name", "")
    if file:
        module = Path(file).with_suffix("").as_posix().replace("/", ".")
        if name == module:  # the module itself failed (a collection error)
            return file
        inner = classname[len(module) :].lstrip(".") if classname.startswith(module) else ""
        return "::".join(p for p in (file, inner.replace(".", "::"), name) if p)
    return f"{classname}::{name}" if classname else name


def _display_path(workspace: Workspace, name: str) -> str:
    path = Path(name)
    full = path if path.is_absolute() else workspace.root / path
    return workspace.relative(full) if workspace.contains(full) else name
