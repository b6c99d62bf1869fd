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
    run.add_argument(
        "-t", "--temperature", type=float, default=0.7, help="0.0 to 1.0 (default 0.7)"
    )
    run.add_argument(
        "--max-tokens", type=int, default=1024, help="answer length limit (default 1024)"
    )
    run.add_argument("--tools", default="", help="comma-separated tool names to enable")
    run.add_argument("--no-stream", action="store_true", help="print the answer when complete")
    run.add_argument("--usage", action="store_true", help="print token usage and time at the end")

    doctor = commands.add_parser(
        "doctor", help="what this machine can do: local model, providers, what to fix"
    )
    doctor.add_argument(
        "--offline", action="store_true", help="do not try to reach the providers' servers"
    )
    commands.add_parser("providers", help="list provider names")
    commands.add_parser("profiles", help="list profiles (built in and $VICTOR_HOME/profiles.toml)")
    return parser


async def _run(args: argparse.Namespace) -> None:
    from .agent import Agent

    tools = [name.strip() for name in args.tools.split(",") if name.strip()]
    # Only what was given on the command line overrides the profile (or the defaults).
    given = {
        "provider": args.provider,
        "model": args.model,
        "temperature": args.temperature,
        "max_tokens": args.max_tokens,
    }
    settings = {key: value for key, value in given.items() if value is not None}
    if tools:
        settings["tools"] = tools
    if args.profile:
        agent = await Agent.from_profile_name(args.profile, **settings)
    else:
        agent = await Agent.create(**{"max_tokens": 1024, **settings})
    task = " ".join(args.task)
    try:
        if args.no_stream:
            print(await agent.run(task))
        else:
            async for token in agent.astream(task):
                print(token, end="", flush=True)
            print()
        if args.usage and agent.last_run is not None:
            run = agent.last_run
            print(
                f"[{run.provider}/{run.model}: {run.usage.input_tokens} in, "
                f"{run.usage.output_tokens} out, {run.duration_ms / 1000:.2f} s]",
                file=sys.stderr,
            )
    finally:
        await agent.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "providers":
        from .providers import available_providers

        print("\n".join(available_providers()))
        return 0
    if args.command == "doctor":
        from .doctor import main as doctor

        return doctor(network=not args.offline)
    if args.command == "profiles":
        from .config import list_profiles

        for name, profile in list_profiles().items():
            print(f"{name:<14} {profile.provider}/{profile.model or '(default model)'}")
        return 0
    try:
        asyncio.run(_run(args))
    except VictorError as exc:
        print(f"victor: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
