"""What the published package promises: type information, and dependency bounds that
bring what victor imports."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
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


def _extra_calls() -> list[tuple[str, int, str]]:
    """(file, line, extra) of every needs_extra/missing_extra call in victor/, from the AST."""
    calls = []
    for path in sorted((ROOT / "victor").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) in ("needs_extra", "missing_extra")
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                calls.append((str(path.relative_to(ROOT)), node.lineno, node.args[0].value))
    return calls


def test_every_missing_extra_message_names_an_extra_the_package_has():
    calls = _extra_calls()
    assert {extra for _, _, extra in calls} >= {"local", "mcp", "otel", "ray", "serve"}
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert [call for call in calls if call[2] not in extras] == []


def test_the_install_line_is_written_once():
    # Every "install the extra" message comes from victor._util.missing_extra (the local
    # model's line, with its build flags, from providers/local/build.py).
    writers = {"victor/_util.py", "victor/providers/local/build.py"}
    # The notebook's nest-asyncio message is left to the notebook's owner (issue 21).
    pending = {"victor/notebook/__init__.py"}
    found = set()
    for path in (ROOT / "victor").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if "pip install" in node.value and "victor-ai[" in node.value:
                    found.add(str(path.relative_to(ROOT)))
    assert found - pending == writers


def test_a_missing_extra_names_the_module_and_a_broken_one_its_error(monkeypatch):
    from victor import ConfigurationError
    from victor._util import needs_extra

    monkeypatch.setitem(sys.modules, "fastapi", None)
    with pytest.raises(ConfigurationError) as missing:
        with needs_extra("serve", "victor serve"):
            import fastapi  # noqa: F401
    assert str(missing.value) == 'victor serve needs fastapi: pip install "victor-ai[serve]"'
    with pytest.raises(ConfigurationError) as broken:
        with needs_extra("mcp", "victor.mcp", what="the MCP SDK"):
            from json import no_such_name  # noqa: F401  (there, but not importable as asked)
    message = str(broken.value)
    assert message.startswith("victor.mcp needs the MCP SDK (cannot import name 'no_such_name'")
    assert message.endswith('): pip install "victor-ai[mcp]"')
    with pytest.raises(ModuleNotFoundError):  # a victor module missing is a bug, not an extra
        with needs_extra("serve", "victor serve"):
            import victor.no_such_module  # noqa: F401


@pytest.mark.timeout(300)
def test_the_built_wheel_carries_the_widgets_front_end_byte_for_byte(tmp_path):
    """A real wheel, built by pip through the project's build backend (hatchling, fetched
    into an isolated build environment unless it is installed here): the timeline's front
    end is inside the package, as the source, and so is the type marker."""
    import importlib.util
    import zipfile

    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path)]
    if importlib.util.find_spec("hatchling") is not None:
        command.append("--no-build-isolation")  # builds offline with the installed backend
    build = subprocess.run(
        [*command, str(ROOT)], capture_output=True, text=True, timeout=280, cwd=tmp_path
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = tmp_path.glob("victor_ai-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        shipped = archive.read("victor/widgets/timeline.js")
    assert shipped == (ROOT / "widgets" / "timeline.js").read_bytes()
    assert {"victor/py.typed", "victor/notebook/timeline_widget.py"} <= names
    # Only the package and its metadata: no tests, notebooks or a top-level widgets/.
    tops = {name.split("/")[0] for name in names}
    assert "victor" in tops and all(t.endswith(".dist-info") for t in tops - {"victor"}), tops
