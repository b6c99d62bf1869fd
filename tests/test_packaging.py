"""What the published package promises: type information, and dependency bounds that
bring what victor imports."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirement(name: str) -> Requirement:
    for line in PYPROJECT["project"]["dependencies"]:
        requirement = Requirement(line)
        if requirement.name == name:
            return requirement
    raise AssertionError(f"{name} is not a dependency")


def test_the_package_is_typed_and_the_wheel_ships_the_marker():
    assert resources.files("victor").joinpath("py.typed").is_file()
    # The wheel takes the whole package directory (non-Python files too), so the marker
    # goes in with it; nothing may exclude it.
    wheel = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["packages"] == ["victor"]
    assert not any("py.typed" in pattern for pattern in wheel.get("exclude", []))


def test_the_anthropic_lower_bound_brings_the_http_library_victor_imports():
    # anthropic 1.0 moved from httpx to httpx2 (0.x require httpx<1); victor's error
    # mapping imports the SDK's transport library directly.
    source = (ROOT / "victor" / "providers" / "anthropic.py").read_text()
    specifiers = _requirement("anthropic").specifier
    floor = min(Version(s.version) for s in specifiers if s.operator in (">=", ">"))
    if re.search(r"^\s*import httpx2\b", source, re.M):
        assert floor >= Version("1.0"), f"anthropic>={floor} may come without httpx2"


def test_the_browser_test_is_collected_without_the_browser_extra():
    # The dev extra has no playwright: the suite must still collect (the browser test is
    # skipped, naming the extra); CI installs the browser extra, so there it runs.
    code = (
        "import sys; sys.modules['playwright'] = None; import pytest; "
        "sys.exit(pytest.main(['--collect-only', '-q', '-rs', '-p', 'no:cacheprovider', "
        "'-o', 'addopts=', 'tests/test_browser.py']))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode in (0, 5), run.stdout + run.stderr  # 5: nothing left to run
    assert 'pip install "victor-ai[browser]"' in run.stdout
