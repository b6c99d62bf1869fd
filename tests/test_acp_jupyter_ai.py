"""`victor acp` in Jupyter AI's chat, driven by Jupyter AI's own code (extra jupyter-ai).

Jupyter AI's persona manager finds the "Victor" persona through victor's entry point (the
installed metadata: ``pip install -e ".[jupyter-ai]"`` refreshes it), on a real Jupyter
Chat document; the persona (Jupyter AI's ``BaseAcpPersona``) starts ``victor acp app.py``
and talks to it with Jupyter AI's ``JaiAcpClient``. The app's agents run on
``victor.testing`` providers whose answers depend on what they are sent. A permission is
answered the way the chat's buttons answer it: the option the tool call's message offers,
sent to ``JaiAcpClient.resolve_permission`` (what Jupyter AI's permission route calls).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("jupyter_ai_acp_client", reason="needs the jupyter-ai extra")

from jupyter_ai_acp_client.base_acp_persona import MODE_CONTROL_ID  # noqa: E402
from jupyter_ai_persona_manager import (  # noqa: E402
    PersonaManager,
    PersonaRequirementsUnmet,
    PreparationState,
)
from jupyterlab_chat.models import Message  # noqa: E402
from jupyterlab_chat.ychat import YChat  # noqa: E402
from traitlets.config import Config  # noqa: E402

from tests.servers.replies import Text  # noqa: E402

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
VICTOR = "jupyter-ai-personas::victor::VictorAcpPersona"

APP = """
from victor import Agent
from victor.testing import FunctionProvider, call


def echo(messages, tools):
    # Jupyter AI puts its notebook guidance before the user's text: answer the last line.
    return "You asked: " + messages[-1].content.splitlines()[-1]


def write_then_report(messages, tools):
    if messages[-1].role == "tool":
        return "write_file said: " + messages[-1].content
    return call("write_file", file_path="notes.txt", content="hello from the chat\\n")


# A word every 20 ms, as a model streams (victor acp joins text that comes faster).
echo_agent = Agent(name="echo", provider=FunctionProvider(echo, chunk_delay=0.02))
writer = Agent(name="writer", provider=FunctionProvider(write_then_report), tools=["write_file"])
"""


@pytest.fixture
async def chat_with(tmp_path, monkeypatch):
    """A Jupyter Chat document in ``tmp_path`` with its persona manager, configured as a
    Jupyter server's config would be; the personas are shut down afterwards."""
    monkeypatch.setenv("VICTOR_HOME", str(tmp_path / "home"))
    (tmp_path / "app.py").write_text(APP)
    managers = []

    def make(**persona_config):
        chat = YChat()
        chat.initial_path = "victor.chat"  # the chat's directory is the session's cwd
        config = Config(
            {"VictorAcpPersona": persona_config, "PersonaManager": {"builtin_mcp_servers": []}}
        )
        manager = PersonaManager(
            chat=chat, root_dir=str(tmp_path), event_loop=asyncio.get_running_loop(), config=config
        )
        managers.append(manager)
        assert VICTOR in manager.personas, (
            f"the persona manager found {list(manager.personas)}: is victor's entry point "
            f'installed? (pip install -e ".[jupyter-ai]")'
        )
        return chat, manager.personas[VICTOR]

    yield make
    for manager in managers:
        await manager.shutdown_personas()


def user_message(text: str, **metadata: object) -> Message:
    """A message as the chat input sends it (``metadata``: the toolbar's choices)."""
    return Message(
        id=f"user-{time.monotonic_ns()}",
        body=text,
        sender="someone",
        time=time.time(),
        metadata=metadata or None,
    )


async def until(condition, what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"not in 20 s: {what}"
        await asyncio.sleep(0.05)


def replies(chat: YChat) -> list[Message]:
    return [m for m in chat.get_messages() if m.sender == VICTOR]


async def answered(chat: YChat, start: str) -> str:
    """The text of Victor's last reply once it starts with ``start`` and stops growing.

    The ACP SDK runs each ``session/update`` notification in a task of its own, while the
    prompt's response resolves at once: the last chunks can land in the chat just after
    Jupyter AI's turn has returned, as they do in JupyterLab."""
    deadline, last = time.monotonic() + 10, None
    while time.monotonic() < deadline:
        texts = [m.body for m in replies(chat) if m.body]
        if texts and texts[-1].startswith(start) and texts[-1] == last:
            return last
        last = texts[-1] if texts else None
        await asyncio.sleep(0.1)
    raise AssertionError(f"no settled reply starting {start!r}: {replies(chat)}")


def test_the_entry_point_jupyter_ai_loads_is_the_one_pyproject_declares():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    (name, value), *others = declared["jupyter_ai.personas"].items()
    assert not others and value == "victor.acp.jupyter_ai:VictorAcpPersona"
    installed = importlib.metadata.entry_points(group="jupyter_ai.personas")
    assert installed[name].value == value, 'stale install: pip install -e ".[jupyter-ai]"'
    assert installed[name].load().__name__ == "VictorAcpPersona"


def test_the_readmes_persona_settings_are_the_personas_traits():
    from victor.acp.jupyter_ai import VictorAcpPersona

    named = set(re.findall(r"c\.VictorAcpPersona\.(\w+)", README))
    named |= set(re.findall(r"\(and `\.(\w+) = ", README))
    assert named == {"app", "agent", "profile"}
    assert named <= set(VictorAcpPersona.class_trait_names(config=True))


async def test_victor_is_in_the_chat_with_the_configured_command(chat_with, tmp_path):
    chat, persona = chat_with(app=str(tmp_path / "app.py"), agent="echo")
    assert persona.name == "Victor" and chat.get_users()[VICTOR].display_name == "Victor"
    assert persona.command() == [
        sys.executable, "-m", "victor", "acp", str(tmp_path / "app.py"), "--agent", "echo"
    ]  # fmt: skip
    assert "victor acp" in persona.defaults.description
    assert Path(persona.defaults.avatar_path).read_text().startswith("<svg")


async def test_unconfigured_victor_answers_with_the_users_configured_model(
    chat_with, monkeypatch, openai_server
):
    """No persona configuration: the user's `default` profile, i.e. the model the Jupyter
    server's environment names and what profiles.toml adds (here a system prompt), over real
    HTTP to the loopback OpenAI server."""
    home = Path(os.environ["VICTOR_HOME"])
    home.mkdir()
    (home / "profiles.toml").write_text(
        '[profiles.default]\nsystem_prompt = "Answer in one sentence."\n'
    )
    monkeypatch.setenv("VICTOR_PROVIDER", "openai")
    monkeypatch.setenv("VICTOR_MODEL", "gpt-4o")
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-jupyter-ai-test")
    openai_server.script(Text("Paris, on the Seine.", input_tokens=40))
    chat, persona = chat_with()
    assert persona.command()[3:] == ["acp", "--profile", "default"]

    await persona.on_message(user_message("Where is the capital of France?"))

    assert await answered(chat, "Paris") == "Paris, on the Seine."
    (request,) = openai_server.requests
    assert request.body["model"] == "gpt-4o" and request.body["stream"] is True
    assert request.body["messages"][0] == {"role": "system", "content": "Answer in one sentence."}
    assert request.body["messages"][-1]["content"].endswith("Where is the capital of France?")


async def test_a_prompt_is_answered_in_the_chat_with_streamed_text(chat_with, tmp_path):
    chat, persona = chat_with(app=str(tmp_path / "app.py"), agent="echo")
    seen: list[str] = []  # the reply's text each time the document changed, as a client sees it
    chat.ymessages.observe_deep(
        lambda _: seen.extend(m["body"] for m in chat.ymessages.to_py() if m["sender"] == VICTOR)
    )

    await persona.on_message(user_message("What is the capital of France?"))

    text = await answered(chat, "You asked: ")
    assert text == "You asked: What is the capital of France?"
    assert len(replies(chat)) == 1
    growing = [body for body in dict.fromkeys(seen) if body]
    assert len(growing) >= 4, growing  # word by word, not one final write
    assert all(text.startswith(body) for body in growing)
    assert persona.acp_session_usage.total_tokens > 0  # victor's usage, in the prompt response


@pytest.mark.parametrize("button", ["allow_once", "reject_once"])
async def test_a_tool_call_waits_for_the_chats_permission_buttons(chat_with, tmp_path, button):
    chat, persona = chat_with(app=str(tmp_path / "app.py"), agent="writer")
    answering = asyncio.create_task(persona.on_message(user_message("Write me a note.")))

    pending = await _pending_permission(chat, answering)
    assert pending["title"] == "write_file notes.txt" and pending["kind"] == "edit"
    assert {option["kind"] for option in pending["permission_options"]} == {
        "allow_once", "allow_always", "reject_once"
    }  # fmt: skip
    assert pending["diffs"] == [
        {"path": str(tmp_path / "notes.txt"), "new_text": "hello from the chat\n"}
    ]
    assert not (tmp_path / "notes.txt").exists()  # nothing is written before the answer
    (option,) = [o for o in pending["permission_options"] if o["kind"] == button]
    client = await persona.get_client()
    assert client.resolve_permission(
        await persona.get_session_id(), pending["tool_call_id"], option["option_id"]
    )
    await asyncio.wait_for(answering, 30)

    answer = await answered(chat, "write_file said: ")  # what the tool told the model
    (tool_call,) = [tc for m in replies(chat) for tc in (m.metadata or {}).get("tool_calls", [])]
    assert tool_call["selected_option_id"] == option["option_id"]
    if button == "allow_once":
        assert (tmp_path / "notes.txt").read_text() == "hello from the chat\n"
        assert tool_call["status"] == "completed"
        assert "notes.txt" in answer
    else:
        assert not (tmp_path / "notes.txt").exists()
        assert tool_call["status"] == "failed"
        assert "refused" in answer or "not run" in answer, answer


async def _pending_permission(chat: YChat, answering: asyncio.Task) -> dict:
    """The tool call whose permission buttons the chat shows, once it shows them."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert not answering.done(), f"the turn ended without asking: {replies(chat)}"
        for message in replies(chat):
            for tool_call in (message.metadata or {}).get("tool_calls", []):
                if tool_call.get("permission_status") == "pending":
                    return tool_call
        await asyncio.sleep(0.05)
    raise AssertionError(f"no permission request in 30 s: {replies(chat)}")


async def test_the_chat_offers_victors_modes_and_commands_and_read_only_refuses(
    chat_with, tmp_path
):
    chat, persona = chat_with(app=str(tmp_path / "app.py"), agent="writer")
    assert persona.parent.prepare_persona(VICTOR)  # what picking Victor in the chat does
    await until(lambda: persona.preparation_state == PreparationState.PREPARED, "prepared")
    (mode,) = [s for s in persona.get_setting_configurations() if s.id == MODE_CONTROL_ID]
    assert [o.id for o in mode.options] == ["ask", "auto-edits", "read-only"]
    assert mode.current == "ask"
    commands = lambda: {c.name for c in persona.get_slash_commands()}  # noqa: E731
    await until(lambda: {"/code-review", "/explain"} <= commands(), "victor's workflows")

    # The chat input stamps the toolbar's mode on the message; Jupyter AI applies it first.
    read_only = user_message("Write me a note.", settings={MODE_CONTROL_ID: "read-only"})
    await asyncio.wait_for(persona.on_message(read_only), 30)  # asking would wait for a click

    answer = await answered(chat, "write_file said: ")
    assert "read-only" in answer and not (tmp_path / "notes.txt").exists()
    (tool_call,) = [tc for m in replies(chat) for tc in (m.metadata or {}).get("tool_calls", [])]
    assert tool_call["status"] == "failed" and "permission_status" not in tool_call  # not asked


@pytest.mark.parametrize(
    "setting, said",
    [
        ({"profile": "reviewr"}, ["reviewr", "Available: default"]),
        ({"app": "agents/app.py"}, ["agents/app.py", "is not a file"]),
    ],
)
async def test_a_bad_setting_is_a_clear_message_in_the_chat(chat_with, setting, said):
    chat, persona = chat_with(**setting)
    await persona.on_message(user_message("hello"))
    (reply,) = replies(chat)
    assert "ConfigurationError" in reply.body and all(part in reply.body for part in said)
    assert not persona._client_started()  # no subprocess, no startup task left failed


def test_without_the_acp_client_the_persona_says_what_to_install(monkeypatch):
    """The persona manager logs PersonaRequirementsUnmet as a warning, instead of an error
    in every chat, when Jupyter AI is installed without its ACP client."""
    monkeypatch.setitem(sys.modules, "jupyter_ai_acp_client.base_acp_persona", None)
    monkeypatch.delitem(sys.modules, "victor.acp.jupyter_ai", raising=False)
    with pytest.raises(PersonaRequirementsUnmet, match=r"victor-ai\[jupyter-ai\]"):
        importlib.import_module("victor.acp.jupyter_ai")
    monkeypatch.delitem(sys.modules, "victor.acp.jupyter_ai", raising=False)


def test_import_victor_loads_nothing_of_jupyter_ai():
    code = (
        "import sys, victor; "
        "loaded = [m for m in sys.modules if m.startswith(('jupyter_ai', 'victor.acp', 'acp'))]; "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
