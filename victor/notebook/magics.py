"""The ``%%victor`` cell magic and ``%victor`` line magic: a notebook cell as the prompt.

Arguments are declared once, with IPython's ``magic_arguments``: the parser, ``%victor?``
and ``%victor help`` all come from the declaration on ``VictorMagics.victor``. What cells
share (settings, the conversation) is in session.py; how typed text becomes the prompt
(``{name}`` placeholders, ``%victor ...?`` lines) in prompt.py.
"""

from __future__ import annotations

import argparse
import copy
import keyword
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import (
    MagicHelpFormatter,
    argument,
    magic_arguments,
    parse_argstring,
)

from .._sync import run_sync
from ..core.agent import Agent
from ..errors import ConfigurationError, VictorError
from ..teams.base import AgentTeam
from ..tools.registry import registry
from .prompt import MISSING, find, interpolate, last_error_text, prompt_part
from .session import NotebookSession
from .stream import FORMATS, StreamView, extract_code, parse_json_answer

# NotebookSession and interpolate moved to session.py and prompt.py; importable here too.
__all__ = ["VictorMagics", "NotebookSession", "MagicUsageError", "interpolate"]

_SUBCOMMANDS = ("config", "list", "history", "reset", "doctor", "help", "undo")


class MagicUsageError(ConfigurationError):
    """A ``%victor``/``%%victor`` line that cannot be used as written."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a traceback: the message is the whole story.
        return [f"{type(self).__name__}: {self}"]


class _PlainHelpFormatter(MagicHelpFormatter):
    """IPython's formatter, with ``usage: %victor`` where it opens the usage with ``::``
    (a reStructuredText code block, meant for the docstring ``%victor?`` shows)."""

    def add_usage(self, usage: Any, actions: Any, groups: Any, prefix: Any = "usage: %") -> None:
        super().add_usage(usage, actions, groups, prefix)


@magics_class
class VictorMagics(Magics):
    """``%%victor`` and ``%victor``; one ``NotebookSession`` per shell."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.session = NotebookSession()

    @magic_arguments()
    @argument("-p", "--provider", help="provider for this cell (anthropic, openai, ollama, ...)")
    @argument("-m", "--model", help="model for this cell")
    @argument(
        "--agent",
        metavar="NAME",
        help="use the Agent object called NAME in the notebook (its own conversation), or the "
        "AgentTeam called NAME (the cell is its task; its timeline follows the run live)",
    )
    @argument("--tools", metavar="A,B", help="extra tools for this cell, by name, comma-separated")
    @argument(
        "--context",
        choices=("schema", "values", "none"),
        help="what the notebook tools may send of the kernel: schema (names, types, shapes; "
        "the default), values (samples and reprs too) or none; implies --tools notebook",
    )
    @argument("-f", "--format", choices=FORMATS, help="how to show the answer (default: markdown)")
    @argument(
        "--schema",
        metavar="NAME",
        help="the answer is an object of the notebook's type NAME (a pydantic model, a "
        "dataclass, ...): it grows in the cell as JSON, and -o stores the validated object "
        "(implies --format json)",
    )
    @argument("--no-stream", action="store_true", help="show the answer once, when it is complete")
    @argument("-o", "--output", metavar="VAR", help="store the answer in the notebook variable VAR")
    @argument("--new", action="store_true", help="start a fresh conversation")
    @argument(
        "--record",
        choices=("once", "none", "new_episodes", "all"),
        help="%%victor cassette: the mode (default once; none when CI=true)",
    )
    @argument(
        "--realtime", action="store_true", help="%%victor cassette: replay at the recorded pace"
    )
    @argument(
        "words",
        nargs=argparse.REMAINDER,
        help="line form only: config [key=value ...] | list | history | reset | doctor | fix "
        "| explain | undo | cassette FILE|off | help | a one-line prompt",
    )
    @no_var_expand
    @line_cell_magic
    def victor(self, line: str, cell: str | None = None) -> None:
        """Ask an agent: the cell (or the rest of the line) is the prompt.

        The answer streams into the output and is rendered as Markdown when complete,
        with tool calls as collapsible cards and a footer (provider/model, tokens,
        seconds). Consecutive cells are one conversation, until --new or %victor reset.

        In the prompt, {name} is replaced by the notebook variable's value ({obj.attr},
        {In[3]}, {Out[3]}, {data['key']} too); {err} is the last error with its traceback.
        Unknown names stay as written; {{ and }} are literal braces.

        Line form:
          %victor config [key=value ...]   show or set session settings: provider, model,
                                           temperature, max_tokens, max_iterations, base_url,
                                           system_prompt, tools, format, stream,
                                           approval (ask, auto or never)
                                           (defaults: $VICTOR_PROVIDER, $VICTOR_MODEL)
          %victor list                     providers (configured? reachable?) and tools
          %victor history                  the conversation so far (--agent NAME: that agent's)
          %victor reset                    forget the conversation (--agent NAME: that agent's)
          %victor doctor                   what this machine can do (local model, providers)
          %victor fix                      after a cell fails: a fixed cell, as a diff to apply
          %victor explain                  after a cell fails: what went wrong, in words
          %victor undo                     undo the names the last approved run_code changed
          %victor cassette FILE            record the rest of the notebook's model answers to
                                           FILE once, replay them after (--record MODE,
                                           --realtime); %victor cassette off stops
          %victor help                     this text
          %victor what is a monad?         a one-line prompt (options go first)
        """
        args = self._parse(line)
        if cell is None:
            return self._line(line, args)
        if args.words:
            raise MagicUsageError(
                f"%%victor takes options only on its first line, not {' '.join(args.words)!r}: "
                f"write the prompt in the cell body"
            )
        if not cell.strip():
            raise MagicUsageError("the cell is empty: write the prompt below %%victor")
        self._ask(cell.strip(), args)

    # -- line form ---------------------------------------------------------------------

    def _line(self, line: str, args: argparse.Namespace) -> None:
        words = args.words
        command = words[0] if words else "help"
        if command == "config" and all("=" in w for w in words[1:]):
            return self._config(words[1:])
        if command in ("history", "reset") and len(words) == 1:
            agent = self._user_agent(args.agent) if args.agent else None
            return self._history(agent) if command == "history" else self._reset(agent)
        if command in ("fix", "explain") and len(words) == 1:
            from .workspace.fix import after_error

            try:
                return after_error(self, command, args)
            except MagicUsageError:
                raise
            except ConfigurationError as exc:
                raise MagicUsageError(str(exc)) from None
            except VictorError as exc:
                raise _short(exc) from None
        if command == "cassette" and len(words) >= 2:
            # Options may also follow the file: %victor cassette FILE --realtime
            after = self._parse(" ".join(words[2:]))
            if after.words:
                raise MagicUsageError(f"%victor cassette takes one FILE, not {words[1:]}")
            after.record, after.realtime = (
                after.record or args.record,
                after.realtime or args.realtime,
            )
            return self._cassette(words[1], after)
        if not words or (command in _SUBCOMMANDS and len(words) == 1):
            return getattr(self, f"_{command}")()
        self._ask(prompt_part(line, len(words)), args)

    def _help(self) -> None:
        parser = copy.copy(self.victor.parser)
        parser.formatter_class = _PlainHelpFormatter
        print(parser.format_help())

    def _doctor(self) -> None:
        from IPython.display import display

        from .._sync import run_sync
        from ..doctor import diagnose

        display(run_sync(diagnose()))

    def _cassette(self, file: str, args: argparse.Namespace) -> None:
        from ..cassette import cassette, default_mode

        if self.session.cassette is not None:
            self.session.cassette.stop()
            self.session.cassette = None
        if file == "off":
            return print("cassette off: model requests go to the models again")
        tape = cassette(file, args.record or default_mode(), realtime=args.realtime)
        self.session.cassette = tape.start()
        print(tape.describe())

    def _undo(self) -> None:
        from .workspace.undo import undo

        print(undo())

    def _config(self, pairs: list[str]) -> None:
        try:
            shown = self.session.configure(pairs)
        except ConfigurationError as exc:
            raise MagicUsageError(str(exc)) from None
        print("victor session settings:")
        for key, value in shown.items():
            print(f"  {key} = {value!r}")

    def _list(self) -> None:
        from ..config import settings
        from ..doctor import provider_checks
        from ..providers.base import available_providers

        default = self.session.config.get("provider") or settings().provider
        print(f"Providers (session default: {default}):")
        checks = run_sync(provider_checks())  # the doctor's, so both say the same
        for name in available_providers():
            if name in checks:
                _, check = checks[name]
                fix = f" -> {check.fix}" if check.fix else ""
                print(f"  {name:<10} {check.detail}{fix}")
            else:
                print(
                    f"  {name:<10} the embedded model, in this process (`%victor doctor` checks it)"
                )
        tools = registry.list()
        print(f"Tools: {', '.join(tools) if tools else '(none registered)'}")
        toolsets = registry.toolsets()
        if toolsets:
            print("Toolsets:")
            for name, members in sorted(toolsets.items()):
                print(f"  {name:<10} {', '.join(members)}")

    def _history(self, agent: Agent | None = None) -> None:
        history = self.session.history if agent is None else agent.history
        if not history:
            print("No conversation yet: a %%victor cell starts one.")
            return
        turn = 0
        for message in history:
            if message.role == "user":
                turn += 1
                print(f"[{turn}] you: {_shorten(message.content)}")
            elif message.role == "assistant":
                calls = ", ".join(
                    f"{c.name}({_shorten(str(c.arguments), 60)})" for c in message.tool_calls
                )
                parts = [_shorten(message.content)] if message.content else []
                if calls:
                    parts.append(f"[calls {calls}]")
                print(f"[{turn}] agent: {' '.join(parts)}")
            elif message.role == "tool":
                flag = "error" if message.is_error else "result"
                print(f"[{turn}]   {message.name} {flag}: {_shorten(message.content, 100)}")

    def _reset(self, agent: Agent | None = None) -> None:
        if agent is None:
            count = self.session.reset()
        else:
            count, _ = len(agent.history), agent.reset()
        print(f"Conversation cleared ({count} messages).")

    # -- asking ------------------------------------------------------------------------

    def _parse(self, line: str) -> argparse.Namespace:
        try:
            return parse_argstring(self.victor, line)
        except UsageError as exc:
            raise MagicUsageError(f"{exc}. See %victor help") from None

    def _ask(self, prompt: str, args: argparse.Namespace) -> None:
        if args.output is not None and (
            not args.output.isidentifier() or keyword.iskeyword(args.output)
        ):
            raise MagicUsageError(
                f"--output {args.output!r} is not a variable name: use e.g. -o answer"
            )
        team = self.shell.user_ns.get(args.agent) if args.agent else None
        if isinstance(team, AgentTeam):
            return self._ask_team(team, prompt, args)
        tools: list[Any] | None
        tools = [t.strip() for t in (args.tools or "").split(",") if t.strip()] or None
        if tools:
            registry.resolve(tools)  # unknown names fail now, before anything runs
        if args.context:  # the notebook toolset in that mode, replacing any by its names
            from .workspace import notebook_tools

            chosen = list(notebook_tools(args.context).__victor_tools__())
            tools = [t for t in tools or [] if t != "notebook"] + chosen
        output_type = self._schema(args.schema) if args.schema else None
        if output_type is not None and args.format not in (None, "json"):
            raise MagicUsageError(
                f"--schema shows the answer as a JSON object: drop --format {args.format} "
                f"(or use --format json)"
            )
        live = False if args.no_stream or self.session.config.get("stream") is False else None
        text = interpolate(prompt, self.shell.user_ns, last_error=last_error_text())
        agent, shared = self._agent_for(args)
        # Typed: this cell's --schema, else the output_type of an --agent that has one.
        typed = (output_type or agent.output_type) not in (None, str)
        fmt = args.format or ("json" if typed else self.session.config.get("format", "markdown"))
        if shared:
            agent.history = list(self.session.history)
        view = StreamView(format=fmt, live=live)
        events = agent.events(text, tools=tools, remember=True, output_type=output_type)
        try:
            finished = run_sync(view.consume(events))
        except VictorError as exc:
            raise _short(exc) from None
        finally:
            if shared:  # only a finished turn joined agent.history, so this stays consistent
                self.session.history = list(agent.history)
        answer: Any = finished.content
        if typed:
            answer = finished.output
        elif fmt == "code":
            answer = extract_code(finished.content)[0]
            self.shell.set_next_input(answer, replace=False)
        elif fmt == "json":
            try:
                answer = parse_json_answer(finished.content)
            except VictorError as exc:
                raise _short(exc) from None
        if args.output:
            self.shell.user_ns[args.output] = answer

    def _ask_team(self, team: AgentTeam, prompt: str, args: argparse.Namespace) -> None:
        """The cell is the team's task: its timeline follows the run (the widget gets batches
        as for ``team.run_sync(..., display=True)``), then the answer is shown as Markdown."""
        from IPython.display import display

        options = ("provider", "model", "tools", "context", "schema", "format", "new")
        given = [f"--{name}" for name in options if getattr(args, name)]
        if given:
            raise MagicUsageError(
                f"--agent {args.agent} is a team, whose members have their own settings: "
                f"drop {', '.join(given)}"
            )
        live = not (args.no_stream or self.session.config.get("stream") is False)
        text = interpolate(prompt, self.shell.user_ns, last_error=last_error_text())
        try:
            result = run_sync(team.run(text, display=live))
        except VictorError as exc:
            raise _short(exc) from None
        if not live:
            display(result.timeline())
        display({"text/markdown": result.answer, "text/plain": result.answer}, raw=True)
        if args.output:
            self.shell.user_ns[args.output] = result

    def _schema(self, name: str) -> Any:
        """The notebook's type called ``name`` (``mod.Type`` too), checked for use as an
        output type."""
        from ..core.output import output_type_for

        value = find(name, self.shell.user_ns)
        if value is MISSING:
            raise MagicUsageError(
                f"--schema {name!r} is not defined in the notebook: define the type first, "
                f"e.g. `class {name.rpartition('.')[2]}(BaseModel): ...`"
            )
        try:
            output_type_for(value)
        except VictorError as exc:
            raise MagicUsageError(f"--schema {name}: {exc}") from None
        return value

    def _user_agent(self, name: str) -> Agent:
        """The notebook's ``Agent`` called ``name``."""
        agent = self.shell.user_ns.get(name)
        if not isinstance(agent, Agent):
            what = (
                "no variable of that name" if agent is None else f"it is a {type(agent).__name__}"
            )
            raise MagicUsageError(
                f"--agent {name!r} must name an Agent in the notebook ({what}); "
                f"create one with `{name} = await Agent.create(...)`"
            )
        return agent

    def _agent_for(self, args: argparse.Namespace) -> tuple[Agent, bool]:
        """The agent for this cell, and whether it uses the session's conversation."""
        if args.agent:
            if args.provider or args.model:
                raise MagicUsageError(
                    "--agent uses that agent's own provider and model: drop --provider/--model"
                )
            agent = self._user_agent(args.agent)
            if args.new:
                agent.reset()
            return agent, False
        if args.new:
            self.session.reset()
        try:
            return self.session.agent(args.provider, args.model), True
        except VictorError as exc:
            raise _short(exc) from None


# -- small helpers ------------------------------------------------------------------------


def _shorten(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _short(exc: VictorError) -> VictorError:
    """Make IPython show ``exc`` as one clear line instead of victor's internal frames."""
    exc._render_traceback_ = lambda: [f"{type(exc).__name__}: {exc}"]  # type: ignore[attr-defined]
    return exc
