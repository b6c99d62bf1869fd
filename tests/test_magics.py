"""The %%victor / %victor magics, StreamView and run_sync, in a real IPython shell.

The shell is IPython's own ``InteractiveShell``; agents talk to ``victor.testing``
providers or to the loopback Anthropic server. Display output is captured the way a
front end receives it: a first display, then in-place updates.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from traitlets.config import Config

from tests.servers import Text
from victor import Agent, AgentTeam, ConfigurationError, ProviderError, VictorError
from victor._sync import call_in_main
from victor.core.messages import TextDelta
from victor.notebook import StreamView, run_sync
from victor.notebook.magics import VictorMagics, interpolate
from victor.notebook.stream import UPDATE_INTERVAL
from victor.testing import FunctionProvider, ScriptedProvider, call, override
from victor.tools import registry, tool


@tool
def lookup_capital(country: str) -> str:
    """The capital of a country."""
    return {"France": "Paris"}.get(country, "unknown")


@pytest.fixture
def registered_tool():
    registry.register(lookup_capital)
    yield lookup_capital
    registry.unregister("lookup_capital")


@pytest.fixture(scope="module")
def shell():
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    ip = InteractiveShell.instance(config=config)
    # Patching asyncio for nested loops is process-wide: keep it out of the test process
    # (the kernel tests check asyncio.run() in a cell, in their own process).
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VICTOR_NESTED_LOOPS", "0")
        ip.run_line_magic("load_ext", "victor")
    yield ip


@pytest.fixture
def ip(shell, monkeypatch):
    """The shell with a fresh victor session and namespace for each test."""
    monkeypatch.delenv("VICTOR_STREAM", raising=False)
    magics = VictorMagics(shell)
    shell.register_magics(magics)
    shell.magics_session = magics.session
    for name in [
        n for n in shell.user_ns if not n.startswith("_") and n not in shell.user_ns_hidden
    ]:
        del shell.user_ns[name]
    return shell


def run(ip, source):
    """Run a cell; return (result, captured output)."""
    with capture_output() as captured:
        result = ip.run_cell(source)
    return result, captured


def displays(captured):
    return [o for o in captured.outputs if "text/plain" in o.data]


# -- loading ---------------------------------------------------------------------------


def test_import_victor_stays_free_of_ipython():
    code = textwrap.dedent(
        """
        import sys, victor
        victor.run_sync
        from victor.notebook import StreamView, run_sync, allow_nested_loops
        assert "IPython" not in sys.modules, "import victor pulled in IPython"
        assert "ipykernel" not in sys.modules
        print("clean")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "clean"


def test_load_ext_registers_both_magics(ip):
    assert "victor" in ip.magics_manager.magics["line"]
    assert "victor" in ip.magics_manager.magics["cell"]


def test_help_comes_from_the_argument_declaration(ip):
    result, captured = run(ip, "%victor help")
    assert result.success
    parser_help = VictorMagics.victor.parser.format_help()
    # Plain text: the docstring's reStructuredText "::" (a code block) is not printed.
    assert captured.stdout.startswith("usage: %victor [-p PROVIDER]")
    assert "::" not in captured.stdout
    description = parser_help[parser_help.index("Ask an agent") :]
    assert captured.stdout.strip().endswith(description.strip())
    for option in (
        "--provider",
        "--model",
        "--agent",
        "--tools",
        "--format",
        "--no-stream",
        "--output",
        "--new",
    ):
        assert option in captured.stdout
    assert VictorMagics.victor.__doc__ == parser_help  # what %victor? shows


# -- %%victor ----------------------------------------------------------------------------


def test_cell_streams_then_renders_markdown_with_footer(ip):
    answer = "# Title\n\n" + "word " * 120 + "\n\n```python\nprint('hi')\n```"
    # ~130 chunks 10 ms apart: over a second of streaming, a dozen updates at 10 a second
    with override(ScriptedProvider([answer], chunk_delay=0.01)):
        result, captured = run(ip, "%%victor -o reply\nWrite something long")
    assert result.success, result.error_in_exec
    shown = displays(captured)
    first, updates = shown[0], shown[1:]
    assert not first.update and all(o.update for o in updates)
    assert len(updates) >= 3, "the answer should visibly grow while it streams"
    final = shown[-1].data["text/markdown"]
    assert final.startswith(answer)
    assert "scripted/test-model" in final and "tokens" in final and " s</sub>" in final
    partial = [o.data["text/plain"] for o in updates[:-1]]
    assert any(0 < len(p) < len(answer) for p in partial)
    assert ip.user_ns["reply"] == answer
    assert result.result is None  # nothing echoed as Out[n]: the display is the output


def test_long_fast_stream_is_throttled(ip):
    # ~2,000 deltas as fast as the provider can make them: a handful of updates, not 2,000.
    started = time.perf_counter()
    with override(ScriptedProvider(["tok " * 2000])):
        result, captured = run(ip, "%%victor\nstream fast")
    elapsed = time.perf_counter() - started
    assert result.success
    # Updates the main thread has not shown yet are replaced, never queued: a stream this
    # fast may end as one display holding the final text. A run of T seconds shows at most
    # T / interval + 1 updates and its final render, however long a busy machine makes T.
    shown = len(displays(captured))
    assert 1 <= shown <= elapsed / UPDATE_INTERVAL + 2, f"{shown} displays in {elapsed:.2f} s"
    assert displays(captured)[-1].data["text/plain"].startswith("tok " * 2000)


@pytest.mark.parametrize("how", ["--no-stream", "env"])
def test_no_stream_renders_once(ip, monkeypatch, how):
    if how == "env":
        monkeypatch.setenv("VICTOR_STREAM", "0")
    flag = "--no-stream" if how == "--no-stream" else ""
    with override(ScriptedProvider(["all at once " * 30], chunk_delay=0.002)):
        result, captured = run(ip, f"%%victor {flag}\nanswer")
    assert result.success
    shown = displays(captured)
    assert len(shown) == 1 and not shown[0].update
    assert shown[0].data["text/plain"].startswith("all at once")


def test_consecutive_cells_are_one_conversation(ip):
    provider = ScriptedProvider(["Paris.", "About 2.1 million.", "Hello again."])
    with override(provider):
        run(ip, "%%victor\nWhat is the capital of France?")
        run(ip, "%%victor\nAnd its population?")
        history, captured = run(ip, "%victor history")
        run(ip, "%%victor --new\nHi")
    second = [(m.role, m.content) for m in provider.requests[1]]
    assert second == [
        ("user", "What is the capital of France?"),
        ("assistant", "Paris."),
        ("user", "And its population?"),
    ]
    assert [m.content for m in provider.requests[2]] == ["Hi"]  # --new forgot the rest
    assert "[1] you: What is the capital of France?" in captured.stdout
    assert "[2] agent: About 2.1 million." in captured.stdout


def test_reset_clears_the_conversation(ip):
    provider = ScriptedProvider(["one", "two"])
    with override(provider):
        run(ip, "%%victor\nfirst")
        _, captured = run(ip, "%victor reset")
        run(ip, "%%victor\nsecond")
    assert "Conversation cleared (2 messages)" in captured.stdout
    assert [m.content for m in provider.requests[1]] == ["second"]


def test_variables_are_interpolated(ip):
    provider = ScriptedProvider(["ok", "ok"])
    run(ip, "n = 41\nclass Box: size = 3\nitems = ['a', 'b']\nconfig = {'mode': 'fast'}")
    run(ip, "1 / 0")  # leaves a last error for {err}
    with override(provider):
        result, _ = run(
            ip,
            "%%victor\n{n} {Box.size} {items[1]} {config['mode']} {missing} {{n}} {In[1]!r} {err}",
        )
    assert result.success, result.error_in_exec
    prompt = provider.requests[0][-1].content
    assert prompt.startswith("41 3 b fast {missing} {n} {In[1]!r} Traceback")
    assert "ZeroDivisionError: division by zero" in prompt


def test_interpolation_reaches_in_and_out():
    namespace = {"In": ["", "x = 1", "x + 1"], "Out": {2: 2}, "name": "Ada"}
    assert interpolate("{In[1]} / {Out[2]} / {name}", namespace) == "x = 1 / 2 / Ada"
    assert interpolate("{In[9]} {Out[7]} {name.nope}", namespace) == "{In[9]} {Out[7]} {name.nope}"
    assert interpolate("{{literal}} {err}", namespace, last_error="Boom") == "{literal} Boom"
    assert interpolate("def f(): return {1: 2}", namespace) == "def f(): return {1: 2}"


def test_one_line_prompt_keeps_its_text(ip):
    provider = ScriptedProvider(["A monoid in the category of endofunctors.", "ok"])
    with override(provider):
        result, _ = run(ip, "%victor what's a monad?")
        run(ip, '%victor -o short --new say "hi there" -m verbatim')
    assert result.success
    assert provider.requests[0][-1].content == "what's a monad?"
    assert provider.requests[1][-1].content == 'say "hi there" -m verbatim'
    assert ip.user_ns["short"] == "ok"


def test_words_that_start_like_a_subcommand_are_a_prompt(ip):
    provider = ScriptedProvider(["2, 3, 5"])
    with override(provider):
        result, _ = run(ip, "%victor list three prime numbers")
    assert result.success
    assert provider.requests[0][-1].content == "list three prime numbers"


def test_agent_option_uses_the_notebook_agent(ip):
    ip.user_ns["helper"] = Agent(provider=ScriptedProvider(["from helper", "again"]), name="helper")
    result, captured = run(ip, "%%victor --agent helper -o got\nhello")
    assert result.success
    assert ip.user_ns["got"] == "from helper"
    assert len(ip.user_ns["helper"].history) == 2  # its own conversation, remembered
    run(ip, "%%victor --agent helper --new\nagain")
    assert [m.content for m in ip.user_ns["helper"].history] == ["again", "again"]


def test_agent_created_with_top_level_await_works(ip):
    # Created (and used once) on another loop, then run by the magic on victor's loop.
    agent = asyncio.run(Agent.create(provider=ScriptedProvider(["first", "second"])))
    asyncio.run(agent.run("warm up"))
    ip.user_ns["agent"] = agent
    result, _ = run(ip, "%%victor --agent agent -o out\ngo")
    assert result.success and ip.user_ns["out"] == "second"


def test_agent_option_runs_a_notebook_team_with_the_cell_as_its_task(ip):
    team = AgentTeam.pipeline(["a", "b"], provider=FunctionProvider(lambda m, t: "The moon."))
    ip.user_ns.update(team=team, topic="the tides")
    result, captured = run(ip, "%%victor --agent team -o got\nExplain {topic}")
    assert result.success, result.error_in_exec
    got = ip.user_ns["got"]
    assert [t.agent for t in got.transcript] == ["a", "b"] and got.task == "Explain the tides"
    # The timeline (live, then final) and the answer, as Markdown.
    assert captured.outputs[-1].data == {"text/markdown": got.answer, "text/plain": got.answer}
    timeline = [o.data["text/plain"] for o in captured.outputs[:-1]]
    assert all(text.startswith("TeamTimeline: ") for text in timeline), timeline
    assert "pipeline team 'pipeline' · completed · 2 member runs" in timeline[-1]
    result, _ = run(ip, "%%victor --agent team --new -m x\nagain")
    assert isinstance(result.error_in_exec, VictorError)
    assert str(result.error_in_exec) == (
        "--agent team is a team, whose members have their own settings: drop --model, --new"
    )


@pytest.mark.parametrize(
    "line, message",
    [
        (
            "%%victor --agent nobody\nhi",
            "--agent 'nobody' must name an Agent in the notebook (no variable",
        ),
        (
            "%%victor --agent number\nhi",
            "--agent 'number' must name an Agent in the notebook (it is a int)",
        ),
        ("%%victor --agent helper -m other\nhi", "drop --provider/--model"),
        ("%%victor --format html\nhi", "invalid choice: 'html'"),
        ("%%victor -o 2x\nhi", "--output '2x' is not a variable name"),
        ("%%victor\n   \n", "the cell is empty"),
        ("%%victor extra words\nhi", "takes options only on its first line"),
        ("%%victor --tools no_such_tool\nhi", "no_such_tool"),
        ("%victor config temperature=hot", "temperature='hot' is not a valid temperature value"),
        ("%victor config colour=blue", "unknown setting 'colour'"),
        ("%victor config api_key=sk-secret", "does not belong in a notebook"),
        ("%victor config provider=antropic", "Did you mean 'anthropic'?"),
        ("%victor config approval=sometimes", "approval='sometimes' is invalid: use ask"),
    ],
)
def test_bad_input_fails_the_cell_with_a_clear_message(ip, line, message):
    ip.user_ns["number"] = 3
    ip.user_ns["helper"] = Agent(provider=ScriptedProvider([]))
    provider = ScriptedProvider(["never used"])
    with override(provider):
        result, captured = run(ip, line)
    assert isinstance(result.error_in_exec, VictorError), result.error_in_exec
    assert message in str(result.error_in_exec)
    assert provider.requests == []  # nothing was sent
    assert "sk-secret" not in str(ip.magics_session.config)


def test_provider_error_renders_and_fails_the_cell(ip):
    failing = ScriptedProvider(
        ["partial answer", ProviderError("overloaded, try later", provider="scripted")]
    )
    with override(failing):
        run(ip, "%%victor\nfirst")
        result, captured = run(ip, "%%victor\nsecond")
    assert isinstance(result.error_in_exec, ProviderError)
    final = displays(captured)[-1].data["text/markdown"]
    assert "**Error:** ProviderError: [scripted] overloaded, try later" in final
    assert result.error_in_exec._render_traceback_() == [
        "ProviderError: [scripted] overloaded, try later"
    ]
    assert len(ip.magics_session.history) == 2  # the failed turn did not join the conversation


def test_config_persists_and_reaches_the_provider(ip, anthropic_server, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key")
    anthropic_server.script(Text("Hello from the server", chunks=4), Text("Second"))
    result, captured = run(
        ip,
        "%victor config provider=anthropic model=claude-test "
        f"base_url={anthropic_server.url} temperature=0.2",
    )
    assert result.success
    assert "provider = 'anthropic'" in captured.stdout and "temperature = 0.2" in captured.stdout
    result, captured = run(ip, "%%victor -o a\nhello")
    assert result.success, result.error_in_exec
    run(ip, "%victor hi again")
    first, second = (r.body for r in anthropic_server.requests)
    assert (
        first["model"] == "claude-test" and first["temperature"] == 0.2 and first["stream"] is True
    )
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
    assert ip.user_ns["a"] == "Hello from the server"
    assert "anthropic/claude-test" in displays(captured)[-1].data["text/markdown"]
    assert "sk-ant-test-key" not in str(captured.outputs) + captured.stdout


def test_list_shows_providers_and_tools(
    ip, monkeypatch, ollama_server, openai_server, registered_tool
):
    """The doctor's provider checks: key set or not (never shown), server reachable."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.url + "/v1")
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)
    result, captured = run(ip, "%victor list")
    assert result.success
    out = captured.stdout
    assert "anthropic  not configured: ANTHROPIC_API_KEY is not set -> export " in out
    assert f"openai     OPENAI_API_KEY is set; {openai_server.url}/v1 answers" in out
    assert f"ollama     no key needed; {ollama_server.url} answers, " in out
    assert "local      the embedded model, in this process" in out
    assert "lookup_capital" in out
    assert "sk-secret-value" not in out


def test_tools_option_and_tool_cards(ip, registered_tool):
    provider = ScriptedProvider(
        [call("lookup_capital", country="France"), "The capital is **Paris**."]
    )
    with override(provider):
        result, captured = run(ip, "%%victor --tools lookup_capital\nCapital of France?")
    assert result.success
    final = displays(captured)[-1].data["text/markdown"]
    card = final[: final.index("The capital is")]
    assert (
        "<details><summary>🔧 <code>lookup_capital(country=&#x27;France&#x27;)</code> · ✓" in card
    )
    assert "**Result**" in card and "Paris" in card
    assert [t.name for t in provider.tools_offered[0]] == ["lookup_capital"]
    plain = displays(captured)[-1].data["text/plain"]
    assert "[tool lookup_capital(country='France') ✓" in plain


def test_config_approval_is_the_agents_approval_policy(ip):
    deleted = []

    @tool(requires_approval=True)
    def delete_record(record: int) -> str:
        """Delete a record."""
        deleted.append(record)
        return "deleted"

    registry.register(delete_record)
    try:
        for policy in ("auto", "never"):
            result, captured = run(ip, f"%victor config approval={policy}")
            assert result.success and f"approval = {policy!r}" in captured.stdout
            provider = ScriptedProvider([call("delete_record", record=7), "Done."])
            with override(provider):
                result, _ = run(ip, "%%victor --new --tools delete_record\nDelete record 7")
            assert result.success, result.error_in_exec
            tool_result = provider.requests[1][-1].content
            if policy == "auto":
                assert deleted == [7] and "deleted" in tool_result
            else:
                assert deleted == [7] and "refused" in tool_result.lower()
        run(ip, "%victor config approval=")
        assert "approval" not in ip.magics_session.config
    finally:
        registry.unregister("delete_record")


def test_format_code_offers_a_new_cell(ip):
    reply = "Here you go:\n\n```python\ndef square(x):\n    return x * x\n```\nEnjoy."
    ip.rl_next_input = None
    with override(ScriptedProvider([reply])):
        result, captured = run(ip, "%%victor --format code -o code\nsquare function")
    assert result.success
    assert ip.user_ns["code"] == "def square(x):\n    return x * x"
    assert ip.rl_next_input == ip.user_ns["code"]  # the front end puts it in a new cell
    assert (
        "```python\ndef square(x):\n    return x * x\n```"
        in displays(captured)[-1].data["text/markdown"]
    )


def test_format_json_parses_the_answer(ip):
    with override(
        ScriptedProvider(['```json\n{"name": "Ada", "born": 1815}\n```', "not json at all"])
    ):
        result, captured = run(ip, "%%victor -f json -o person\nwho?")
        bad, _ = run(ip, "%%victor -f json\nagain")
    assert result.success and ip.user_ns["person"] == {"name": "Ada", "born": 1815}
    assert '"born": 1815' in displays(captured)[-1].data["text/markdown"]
    assert isinstance(bad.error_in_exec, VictorError)
    assert "the answer is not valid JSON" in str(bad.error_in_exec)


def test_format_text_is_plain_only(ip):
    with override(ScriptedProvider(["*not emphasised*"])):
        result, captured = run(ip, "%%victor --format text\nplain please")
    assert result.success
    assert all("text/markdown" not in o.data for o in displays(captured))
    assert displays(captured)[-1].data["text/plain"].startswith("*not emphasised*")


def test_interrupt_cancels_and_keeps_the_conversation_consistent(ip):
    started = []

    def interrupting(messages, tools):
        # Stands in for the stop button: KeyboardInterrupt reaches the waiting main thread
        # while the reply is still streaming.
        started.append(len(messages))
        if len(started) != 2:
            return "short answer"
        call_in_main(_raise_keyboard_interrupt)
        return "slow words " * 200

    with override(FunctionProvider(interrupting, chunk_delay=0.01)):
        run(ip, "%%victor --no-stream\nfirst")
        result, captured = run(ip, "%%victor\nsecond")
        assert isinstance(result.error_in_exec, KeyboardInterrupt)
        final = displays(captured)[-1].data["text/markdown"]
        assert "**Interrupted:**" in final
        assert len(ip.magics_session.history) == 2  # the interrupted turn left no trace
        after, _ = run(ip, "%%victor\nthird")
    assert after.success
    assert started == [1, 3, 3]  # the third request continues from the first turn


def _raise_keyboard_interrupt():
    raise KeyboardInterrupt


# -- run_sync ------------------------------------------------------------------------------


async def test_run_sync_works_while_a_loop_is_running():
    async def add(a, b):
        await asyncio.sleep(0.01)
        return a + b

    assert asyncio.get_running_loop().is_running()
    assert run_sync(add(2, 3)) == 5


def test_run_sync_propagates_errors_and_context():
    async def fail():
        raise ProviderError("nope", provider="x")

    with pytest.raises(ProviderError, match="nope"):
        run_sync(fail())
    with override(ScriptedProvider(["overridden"])):
        agent = Agent(provider=ScriptedProvider(["own"]))
        assert run_sync(agent.run("q")) == "overridden"


def test_run_sync_timeout_cancels():
    cancelled = []

    async def forever():
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    with pytest.raises(TimeoutError):
        run_sync(forever(), timeout=0.2)
    assert cancelled == [True]


def test_run_sync_interrupt_closes_the_stream():
    closed = []

    async def consume():
        agent = Agent(provider=ScriptedProvider(["a b c d e f g h " * 50], chunk_delay=0.01))
        stream = agent.events("go")
        try:
            async for event in stream:
                if type(event) is TextDelta:
                    call_in_main(_raise_keyboard_interrupt)
        finally:
            closed.append(True)

    with pytest.raises(KeyboardInterrupt):
        run_sync(consume())
    assert closed == [True]


def test_run_sync_refuses_its_own_loop_thread():
    async def nested():
        inner = asyncio.sleep(0)
        run_sync(inner)

    with pytest.raises(VictorError, match="use `await` there instead"):
        run_sync(nested())


def test_run_sync_needs_a_coroutine():
    with pytest.raises(TypeError, match="needs a coroutine"):
        run_sync(lambda: 1)  # type: ignore[arg-type]


# -- StreamView outside the magic ----------------------------------------------------------


async def test_agent_run_display_prints_in_a_terminal(capsys):
    agent = Agent(
        provider=ScriptedProvider([call("lookup_capital", country="France"), "Paris it is."]),
        tools=[lookup_capital],
    )
    answer = await agent.run("capital?", display=True)
    out = capsys.readouterr().out
    assert answer == "Paris it is."
    assert out.index("[tool lookup_capital(country='France') ✓") < out.index("Paris it is.")
    assert "scripted/test-model" in out


async def test_stream_view_error_is_rendered_then_raised(capsys):
    agent = Agent(
        provider=ScriptedProvider([ProviderError("bad gateway", provider="scripted", status=502)])
    )
    view = StreamView(target="print")
    with pytest.raises(ProviderError):
        await view.run(agent, "hi")
    assert view.status == "error"
    assert "[error: ProviderError: [scripted] bad gateway (HTTP 502)]" in capsys.readouterr().out


def test_stream_view_has_a_static_bundle(ip):
    view = StreamView(target="display")
    agent = Agent(
        provider=ScriptedProvider([call("lookup_capital", country="France"), "Done."]),
        tools=[lookup_capital],
    )
    with capture_output() as captured:
        run_sync(view.run(agent, "go"))
    bundle = view._repr_mimebundle_()
    assert set(bundle) == {"text/markdown", "text/plain"}
    assert bundle["text/markdown"].count("<details>") == 1 and "Done." in bundle["text/markdown"]
    assert bundle == displays(captured)[-1].data  # what was shown last is the static form
    assert view.updates_sent == len(displays(captured))


def test_attach_shows_every_run_of_an_agent(ip):
    agent = Agent(
        provider=ScriptedProvider(["streamed words here", "not streamed"]), name="watched"
    )
    with StreamView.attach(agent, target="display") as attachment:
        with capture_output() as captured:
            run_sync(_drain_astream(agent, "one"))
            run_sync(agent.run("two"))
    finals = [
        o.data["text/markdown"] for o in displays(captured) if "</sub>" in o.data["text/markdown"]
    ]
    assert len(finals) == 2
    assert finals[0].startswith("streamed words here") and finals[1].startswith("not streamed")
    assert attachment.views == {}
    with capture_output() as after:
        run_sync(Agent(provider=ScriptedProvider(["quiet"]), name="watched").run("x"))
    assert displays(after) == []  # detached


async def _drain_astream(agent, task):
    return [piece async for piece in agent.astream(task)]


def test_stream_view_rejects_unknown_options():
    with pytest.raises(ConfigurationError, match="format='yaml' is unknown"):
        StreamView(format="yaml")  # type: ignore[arg-type]


def test_history_and_reset_of_a_notebook_agent(ip):
    ip.user_ns["tutor"] = Agent(provider=ScriptedProvider(["Four."]), name="tutor")
    run(ip, "%%victor --agent tutor\n2 + 2?")
    _, shown = run(ip, "%victor --agent tutor history")
    _, session = run(ip, "%victor history")
    _, cleared = run(ip, "%victor --agent tutor reset")
    assert shown.stdout == "[1] you: 2 + 2?\n[1] agent: Four.\n"
    assert session.stdout.startswith("No conversation yet")  # the session's own is separate
    assert "Conversation cleared (2 messages)" in cleared.stdout
    assert ip.user_ns["tutor"].history == []


def test_loading_the_extension_did_not_patch_this_process(shell):
    import asyncio as aio

    assert not hasattr(aio, "_nest_patched")  # VICTOR_NESTED_LOOPS=0 was honoured
