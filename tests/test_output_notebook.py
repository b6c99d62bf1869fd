"""``%%victor --schema NAME``: the typed answer grows in the cell as JSON, ``-o`` stores the
validated object. In IPython's own shell, with ``victor.testing`` providers; display output
is captured the way a front end receives it (a first display, then in-place updates)."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from pydantic import BaseModel
from traitlets.config import Config

from victor import Agent
from victor.notebook import StreamView
from victor.notebook.magics import VictorMagics
from victor.testing import ScriptedProvider, override


class Trip(BaseModel):
    """A trip and its stops."""

    city: str
    country: str
    stops: list[str]


ANSWER = (
    '{"city": "Paris", "country": "France", "stops": ["the Louvre", "the Eiffel Tower", '
    '"Montmartre", "the Pantheon", "the Marais"]}'
)
TRIP = Trip.model_validate_json(ANSWER)


@pytest.fixture
def ip(monkeypatch):
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    monkeypatch.setenv("VICTOR_NESTED_LOOPS", "0")  # keep asyncio unpatched in this process
    monkeypatch.delenv("VICTOR_STREAM", raising=False)
    shell.register_magics(VictorMagics(shell))  # a fresh session for each test
    shell.user_ns["Trip"] = Trip
    yield shell
    for name in ("Trip", "trip", "planner"):
        shell.user_ns.pop(name, None)


def run(ip, source):
    with capture_output() as captured:
        result = ip.run_cell(source)
    return result, captured


def test_the_object_grows_in_the_cell_and_o_stores_it(ip):
    # About a dozen chunks 50 ms apart: several throttled updates while it is written.
    with override(ScriptedProvider([ANSWER], chunk_delay=0.05)):
        result, captured = run(ip, "%%victor --schema Trip -o trip\nPlan a day in Paris")
    assert result.success, result.error_in_exec
    assert ip.user_ns["trip"] == TRIP  # the validated object, not text
    shown = [o.data["text/markdown"] for o in captured.outputs if "text/markdown" in o.data]
    final = shown[-1]
    assert final.startswith('```json\n{\n  "city": "Paris",\n  "country": "France",\n')
    assert "scripted/test-model" in final
    growing = [md for md in shown[:-1] if md.startswith("```json")]
    assert growing, f"no partial object was shown: {shown}"
    # Each update is the object so far: indented, closed JSON with fewer stops than the end.
    assert all(md.count('"the ') < final.count('"the ') for md in growing)
    assert any('"Paris"' in md for md in growing)


def test_a_schema_agent_default_is_typed_too(ip):
    ip.user_ns["planner"] = Agent(provider=ScriptedProvider([ANSWER]), output_type=Trip)
    result, _ = run(ip, "%%victor --agent planner -o trip\nPlan a day in Paris")
    assert result.success, result.error_in_exec
    assert ip.user_ns["trip"] == TRIP


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--schema Nowhere", "--schema 'Nowhere' is not defined in the notebook"),
        ("--schema Trip --format markdown", "drop --format markdown"),
        ("--schema print", "print"),
    ],
)
def test_schema_mistakes_are_named(ip, line, message):
    with override(ScriptedProvider([ANSWER])):
        result, _ = run(ip, f"%%victor {line}\nPlan a day")
    assert not result.success
    assert message in str(result.error_in_exec)
    assert "trip" not in ip.user_ns


def test_schema_is_declared_beside_the_other_options():
    help_text = VictorMagics.victor.parser.format_help()
    assert "--schema NAME" in help_text and "-o stores the validated object" in help_text


async def test_an_attached_view_shows_the_object_not_the_wrapper(capsys):
    # StreamView.attach follows runs through the event bus; agent.complete carries the object.
    agent = Agent(provider=ScriptedProvider(['{"result": ["the Louvre", "Montmartre"]}']))
    with StreamView.attach(agent, format="json", target="print", live=False):
        assert await agent.run("Two stops", output_type=list[str]) == ["the Louvre", "Montmartre"]
    printed = capsys.readouterr().out
    assert printed.startswith('```json\n[\n  "the Louvre",\n  "Montmartre"\n]\n```')
