"""``victor batch``: run an agent over every line of a JSONL file (or row of a CSV file).

    victor batch questions.jsonl -p anthropic --prompt "Answer briefly: {question}" -o out.jsonl

Results go to ``--output`` as items finish (rerun the same command to resume after an
interruption) or, without it, to stdout as JSONL in input order at the end; progress and
the summary go to stderr. The exit status is 1 when any item failed. The arguments are
declared in ``victor.cli``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError

__all__ = ["main", "read_items"]


def main(args: argparse.Namespace) -> int:
    """Run the batch the arguments describe; return the exit status."""
    import asyncio

    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    from .core import batch

    items = read_items(args.file)
    agent = await _agent(args)
    options: dict[str, Any] = {}
    if args.workers is not None:
        options["workers"] = args.workers
    try:
        results = await batch(
            items,
            agent,
            prompt=args.prompt,
            concurrency=args.concurrency,
            retries=args.retries,
            timeout=args.timeout,
            checkpoint=args.output,
            backend=args.backend,
            **options,
        )
    finally:
        cleanup = getattr(agent, "cleanup", None)
        if cleanup is not None and args.agent is None:
            await cleanup()
    if args.output is None:
        out = sys.stdout
        for result in results:
            out.write(json.dumps(result.to_record(), ensure_ascii=False, default=str) + "\n")
        out.flush()
    if results.failed:
        _say_why(results.failed, len(results), args.output or "the JSONL on stdout")
    return 1 if results.failed else 0


def _say_why(failed: list[Any], total: int, where: str) -> None:
    """One line on stderr with the first failure's error, in the command's words (the
    summary line counts failures by type only)."""
    from ..cli_output import in_cli_words, write_line

    first = failed[0]
    write_line(
        f"victor: {len(failed)} of {total} items failed (each error is in {where}); "
        f"item {first.index}: {in_cli_words(first.error or first.error_type or '?')}"
    )


async def _agent(args: argparse.Namespace) -> Any:
    if args.agent:
        return load_object(args.agent)
    from ..core.agent import Agent

    given = {
        "provider": args.provider,
        "model": args.model,
        "temperature": args.temperature,
        "max_tokens": args.max_tokens,
        "system_prompt": args.system,
    }
    settings = {key: value for key, value in given.items() if value is not None}
    tools = [name.strip() for name in args.tools.split(",") if name.strip()]
    if tools:
        settings["tools"] = tools
    if args.profile:
        return await Agent.from_profile_name(args.profile, **settings)
    return await Agent.create(**settings)


def load_object(spec: str) -> Any:
    """What ``--agent`` names, in the forms ``victor serve`` takes (its loader): ``app.py:name``
    or ``package.module:name`` (an Agent, AgentTeam or function), or ``app.py`` alone when
    the file defines one Agent or AgentTeam."""
    from ..core.agent import Agent
    from ..hosting.catalog import _has_attribute, _import, by_name, load_app
    from ..teams import AgentTeam

    if not _has_attribute(spec):
        found = load_app(spec)
        if len(found) > 1:
            raise ConfigurationError(
                f"--agent {spec!r} defines {len(found)} agents ({', '.join(found)}): name one, "
                f"e.g. --agent {spec}:{next(iter(found))}"
            )
        return next(iter(found.values()))
    where, _, name = spec.rpartition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # a module beside the items file, as before
    module = _import(where)
    try:
        value = getattr(module, name)
    except AttributeError:
        raise ConfigurationError(f"--agent {spec!r}: {where!r} has no {name!r}") from None
    if isinstance(value, (Agent, AgentTeam)):
        by_name({name: value}, where)  # named by its variable when unnamed, as serve names it
    return value


def read_items(path: str) -> list[Any]:
    """The items of a JSONL file (one JSON value a line; ``-``: stdin) or a CSV file (one
    dict a row, keyed by the header)."""
    if path == "-":
        return _jsonl(sys.stdin.read().splitlines(), "stdin")
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read the items file {path}: {exc.strerror}") from None
    if file.suffix.lower() == ".csv":
        return list(csv.DictReader(text.splitlines()))
    return _jsonl(text.splitlines(), path)


def _jsonl(lines: list[str], where: str) -> list[Any]:
    items = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"line {number} of {where} is not JSON ({exc.msg}); give one JSON value per "
                f"line (a string, or an object with the fields your --prompt names), or a .csv file"
            ) from None
    return items
