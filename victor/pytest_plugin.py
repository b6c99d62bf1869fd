"""The pytest plugin (registered by the package): a cassette per test.

    async def test_weather(victor_cassette):        # cassettes/<module>/<test>.json
        assert "Paris" in await agent.run("Weather in Paris?")

    @pytest.mark.victor_cassette("shared.json", record="new_episodes")
    async def test_other(): ...

``--victor-record=MODE`` sets the mode of every cassette; without it a marker's
``record=`` holds, else ``none`` when ``CI=true`` (CI replays only), else ``once``. The
recorder is imported when a test first uses a cassette, not when pytest starts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

MODES = ("once", "none", "new_episodes", "all")
#: Whether the test's own call failed (then its cassette's leftovers are not reported).
_failed = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("victor")
    group.addoption(
        "--victor-record",
        choices=MODES,
        default=None,
        help="mode of victor cassettes: once (default), none (the default when CI=true), "
        "new_episodes or all",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "victor_cassette(path=None, record=None, **options): record or replay the test's "
        "model exchanges (default file: cassettes/<module>/<test>.json beside the test)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A marked test gets the fixture without naming it.
    for item in items:
        if item.get_closest_marker("victor_cassette") and "victor_cassette" not in getattr(
            item, "fixturenames", ["victor_cassette"]
        ):
            item.fixturenames.append("victor_cassette")  # type: ignore[attr-defined]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_failed] = report.failed
    return report


def cassette_path(node: pytest.Item) -> Path:
    """``cassettes/<module>/<test>.json`` beside the test's file."""
    module = Path(str(node.path))
    name = re.sub(r"[^\w.-]+", "_", node.name).strip("_")
    return module.parent / "cassettes" / module.stem / f"{name}.json"


def record_mode(config: pytest.Config, marked: str | None) -> str:
    """The command line's mode, else the marker's, else ``none`` in CI, else ``once``."""
    chosen = config.getoption("victor_record")
    if chosen:
        return chosen
    if marked:
        return marked
    from .cassette import default_mode

    return default_mode()


@pytest.fixture
def victor_cassette(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The test's cassette, recording or replaying every model exchange while it runs."""
    from .cassette import cassette  # the recorder: imported when a test uses it

    marker = request.node.get_closest_marker("victor_cassette")
    args, options = (list(marker.args), dict(marker.kwargs)) if marker else ([], {})
    path = options.pop("path", None) or (args[0] if args else None)
    if path is None:
        path = cassette_path(request.node)
    elif not Path(path).is_absolute():
        path = Path(str(request.node.path)).parent / "cassettes" / path
    mode = record_mode(request.config, options.pop("record", None))
    # Process-wide, not a context variable: the test may run on an event loop (and in a
    # context) that pytest-asyncio made before this fixture.
    tape = cassette(path, mode, **options).start()  # type: ignore[arg-type]
    try:
        yield tape
    finally:
        tape.stop(failing=request.node.stash.get(_failed, True))
