"""The Binder configuration installs extras that exist and a Python the package supports."""

from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def test_binder_installs_the_package_with_existing_extras():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    post_build = (REPO / "binder" / "postBuild").read_text()
    match = re.search(r'pip install [^\n]*-e "\.\[([a-z,]+)\]"', post_build)
    assert match, "postBuild must install this repository with its extras"
    extras = set(match.group(1).split(","))
    assert {"notebook", "local"} <= extras
    assert extras <= set(project["optional-dependencies"])
    assert (REPO / "binder" / "postBuild").stat().st_mode & 0o111, "postBuild must be executable"


def test_binder_python_is_supported():
    runtime = (REPO / "binder" / "runtime.txt").read_text().strip()
    version = runtime.removeprefix("python-")
    minimum = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert tuple(map(int, version.split("."))) >= tuple(map(int, minimum.lstrip(">=").split(".")))
