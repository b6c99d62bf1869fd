"""The ``victor`` command: run a task on a provider from the terminal, streaming the answer."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from . import __version__
from .errors import VictorError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="victor", description="Run AI agents from the terminal.")
    parser.add_argument("--version", action="version", version=f"victor {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a task and stream the answer")
    run.add_argument("task", nargs="+", help="what the agent should do")
    run.add_argument("-p", "--provider", help="provider name (default: $VICTOR_PROVIDER or ollama)")
    run.add_argument("--profile", help="start from a named profile (see `victor profiles`)")
    run.add_argument("-m", "--model", help="model name (default: the provider's)")
    # No defaults here: what is not given comes from the profile, else the Python API's.
    run.add_argument(
        "-t",
        "--temperature",
        type=float,
        help="0.0 up to the provider's maximum (anthropic 1.0, openai 2.0); default 0.7",
    )
    run.add_argument(
        "--max-tokens", type=int, help="answer length limit in tokens (default 4096, as in Python)"
    )
    run.add_argument("--tools", default="", help="comma-separated tool names to enable")
    run.add_argument(
        "--approval",
        choices=("ask", "auto", "never"),
        help="tool calls that write files or run commands: ask on the terminal (the default; "
        "refused when stdin is not a terminal), allow all, or refuse all",
    )
    run.add_argument("--no-stream", action="store_true", help="print the answer when complete")
    run.add_argument(
        "--usage",
        action="store_true",
        help="print token usage, model and tool calls, and time at the end",
    )
    run.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress lines on stderr (tool calls, retries, first use); errors still show",
    )

    doctor = commands.add_parser(
        "doctor", help="what this machine can do: local model, providers, what to fix"
    )
    doctor.add_argument(
        "--offline", action="store_true", help="do not try to reach the providers' servers"
    )
    commands.add_parser("providers", help="list provider names")
    commands.add_parser(
        "tools", help="list the tools and toolsets for --tools, and which need approval"
    )
    commands.add_parser("profiles", help="list profiles (built in and $VICTOR_HOME/profiles.toml)")
    _add_serving(commands)
    _add_batch(commands)
    return parser


def _add_batch(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``victor batch`` (victor/batch/command.py runs it)."""
    batch = commands.add_parser(
        "batch",
        help="run an agent over each item of a JSONL or CSV file (resumable)",
        description="Run an agent over each item of a JSONL or CSV file. Results go to "
        "--output as items finish (rerun the same command to resume) or to stdout at the end; "
        "progress and the summary go to stderr; the exit status is 1 when an item failed.",
    )
    batch.add_argument("file", help="a .jsonl file (one JSON value a line), a .csv file, or -")
    batch.add_argument("-o", "--output", help="results JSONL, written as items finish")
    batch.add_argument(
        "--prompt", help="task template over each item's fields: 'Classify: {text}' ({item}: all)"
    )
    batch.add_argument("-p", "--provider", help="provider name (default: $VICTOR_PROVIDER)")
    batch.add_argument("-m", "--model", help="model name (default: the provider's)")
    batch.add_argument("--profile", help="start from a named profile (see `victor profiles`)")
    batch.add_argument(
        "-t", "--temperature", type=float, help="0.0 up to the provider's maximum (default 0.7)"
    )
    batch.add_argument("--max-tokens", type=int, help="answer length limit")
    batch.add_argument("--system", help="system prompt")
    batch.add_argument("--tools", default="", help="comma-separated tool names to enable")
    batch.add_argument(
        "--agent",
        help="the Agent, AgentTeam or function to run, as victor serve takes it: app.py:name, "
        "package.module:name, or app.py when it defines one agent",
    )
    batch.add_argument("-c", "--concurrency", type=int, default=8, help="items at once (8)")
    batch.add_argument("--retries", type=int, default=0, help="more attempts per item (0)")
    batch.add_argument("--timeout", type=float, help="seconds per attempt")
    batch.add_argument("--backend", choices=("local", "ray"), default="local")
    batch.add_argument("--workers", type=int, help="Ray actors (cluster: set RAY_ADDRESS)")


def _add_serving(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``victor serve`` and ``victor mcp serve`` (extras serve and mcp)."""

    def common(p: argparse.ArgumentParser, port: int) -> None:
        p.add_argument(
            "app",
            nargs="?",
            help="a Python file (or module) whose Agents/AgentTeams to "
            "serve, optionally :name (default: every profile)",
        )
        p.add_argument(
            "--host",
            default="127.0.0.1",
            help="address (default 127.0.0.1; another needs $VICTOR_API_TOKEN)",
        )
        p.add_argument("--port", type=int, default=port, help=f"port (default {port})")
        p.add_argument("--profile", action="append", help="serve this profile (repeatable)")
        p.add_argument(
            "--approval",
            choices=["never", "auto"],
            default="never",
            help="tools that need approval: refuse (default) or allow",
        )

    serve = commands.add_parser("serve", help="serve agents over HTTP (SSE, AG-UI, MCP at /mcp)")
    common(serve, 8000)
    serve.add_argument("--max-runs", type=int, default=32, help="runs at once (429 above)")
    serve.add_argument("--max-body", type=int, default=1_000_000, help="request bytes (413 above)")
    serve.add_argument("--cors", action="append", help="allow browser calls from this origin")
    serve.add_argument("--no-mcp", action="store_true", help="do not serve MCP at /mcp")
    serve.add_argument("--log-level", default="info", help="uvicorn's log level (default info)")
    mcp = commands.add_parser("mcp", help="MCP: serve victor's tools and agents").add_subparsers(
        dest="mcp_command", required=True
    )
    mcp_serve = mcp.add_parser("serve", help="tools and ask_<agent> tools for MCP clients")
    common(mcp_serve, 8000)
    mcp_serve.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    mcp_serve.add_argument("--tools", help="comma-separated tools or toolsets (default: all)")
    mcp_serve.add_argument("--workspace", help="where file tools work (default: the cwd)")
    acp = commands.add_parser(
        "acp",
        help="serve an agent or team to ACP clients (Zed, Jupyter AI, marimo) over stdio",
        description="An ACP agent on stdin/stdout: the agent or team of APP (or --profile), "
        "in the client's working directory, asking the client before tools write or run.",
    )
    acp.add_argument(
        "app", nargs="?", help="a Python file (or module) defining the Agent/AgentTeam to serve"
    )
    acp.add_argument("--agent", help="which agent or team of APP (when it defines several)")
    acp.add_argument("--profile", help="serve this profile (see `victor profiles`)")


async def _run(args: argparse.Namespace) -> None:
    from .cli_output import RunLines
    from .core.agent import Agent
    from .core.events import EventBus

    tools = [name.strip() for name in args.tools.split(",") if name.strip()]
    # Only what was given on the command line overrides the profile (or the defaults).
    given = {
        "provider": args.provider,
        "model": args.model,
        "temperature": args.temperature,
        "max_tokens": args.max_tokens,
        "approval": args.approval,
    }
    settings = {key: value for key, value in given.items() if value is not None}
    if tools:
        settings["tools"] = tools
    # The run's own bus (feeding the default one): its tool calls become lines on stderr.
    settings["bus"] = bus = EventBus(parent=EventBus.default())
    if args.profile:
        agent = await Agent.from_profile_name(args.profile, **settings)
    else:
        agent = await Agent.create(**settings)
    lines = RunLines(bus, quiet=args.quiet)
    task = " ".join(args.task)
    try:
        if args.no_stream:
            lines.text(str(await agent.run(task)))
        else:
            async for token in agent.astream(task):
                lines.text(token)
        run = agent.last_run
        if lines.open_line:
            print()
        if run is not None and (empty := lines.empty(run)):
            print(empty, file=sys.stderr)
        if args.usage and run is not None:
            print(lines.usage(run), file=sys.stderr)
    finally:
        lines.close()
        await agent.cleanup()


def _list_tools() -> None:
    from .tools.registry import registry

    print(registry.table())
    print(
        "\n[approval]: each call waits for what --approval says (ask on the terminal, the "
        "default; auto: allowed; never: refused); * marks those tools in a toolset"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "tools":
        _list_tools()
        return 0
    if args.command == "providers":
        from .providers import available_providers

        print("\n".join(available_providers()))
        return 0
    from .cli_output import terminal_logging

    if args.command == "doctor":
        from .doctor import main as doctor

        with terminal_logging(quiet=False):  # a first use says what it is doing
            return doctor(network=not args.offline)
    if args.command == "profiles":
        from .config import list_profiles

        for name, profile in list_profiles().items():
            print(f"{name:<14} {profile.provider}/{profile.model or '(default model)'}")
        return 0
    with terminal_logging(quiet=getattr(args, "quiet", False)):
        return _command(args)


def _command(args: argparse.Namespace) -> int:
    """Run a command that may fail: a victor error is one line (in the command's words)."""
    from .cli_output import in_cli_words

    try:
        if args.command == "serve":
            from .serve.command import main as serve

            return serve(args)
        if args.command == "mcp":
            from .mcp.command import main as mcp

            return mcp(args)
        if args.command == "acp":
            from .acp.command import main as acp

            return acp(args)
        if args.command == "batch":
            from .batch.command import main as run_batch

            return run_batch(args)
        asyncio.run(_run(args))
    except VictorError as exc:
        print(f"victor: {in_cli_words(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
