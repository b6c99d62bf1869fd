"""Serving over stdio: the protocol on stdout and nothing else, until the client goes away."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import sys
from typing import TYPE_CHECKING, Any

from .._util import needs_extra
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ..core.agent import Agent
    from ..hosting.catalog import Catalog
    from ..teams import AgentTeam

__all__ = ["serve", "serve_stdio"]


def serve_stdio(target: Agent | AgentTeam | Catalog, name: str | None = None) -> None:
    """Serve ``target`` (an agent, a team, or the one called ``name`` in a ``Catalog``) as
    an ACP agent on stdin/stdout; returns when the client closes stdin.

    Each session works in the client's ``cwd``; a tool call that needs approval asks the
    person at the client (``session/request_permission``), whatever approval policy the
    agents had. Only protocol messages go to stdout: what anything else prints there (a
    tool's ``print``, a subprocess) goes to stderr, with the logs.
    """
    with needs_extra("acp", "victor acp", what="agent-client-protocol"):
        import acp  # noqa: F401  (a missing extra is said here, before stdio is touched)
    protocol = _own_stdout()
    asyncio.run(serve(target, name, stdout=protocol))


async def serve(
    target: Agent | AgentTeam | Catalog,
    name: str | None = None,
    *,
    stdin: Any = None,
    stdout: Any = None,
) -> None:
    """Serve ``target`` over ``stdin`` and ``stdout`` (binary files; default: the
    process's) until the client goes away; then close what the sessions opened."""
    with needs_extra("acp", "victor acp", what="agent-client-protocol"):
        from acp import run_agent
    from ..hosting.catalog import Catalog
    from .permissions import ask_client
    from .server import VictorACPAgent

    catalog = target if isinstance(target, Catalog) else Catalog({target.name: target})
    catalog.approval = ask_client  # the person at the client approves (see permissions.py)
    name = name or _only(catalog)
    if catalog.kind(name) is None:
        raise ConfigurationError(catalog.missing(name, "agent"))
    agent = VictorACPAgent(catalog, name)
    reader, writer = await _streams(stdin or sys.stdin, stdout or sys.stdout.buffer)
    answered = _Answered()
    logging.getLogger().addFilter(answered)
    catalog.open()
    try:
        await run_agent(agent, writer, reader)
    finally:
        await agent.close()
        await catalog.close()
        writer.close()
        logging.getLogger().removeFilter(answered)


class _Answered(logging.Filter):
    """The SDK's log, said shortly: no traceback for an error it has sent to the client as
    an ACP error (the client shows it), one line for a line that is not JSON (the SDK
    skips it); everything else as the SDK logs it, on stderr."""

    def filter(self, record: logging.LogRecord) -> bool:
        from acp import RequestError

        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, RequestError):
            return False
        if isinstance(error, ValueError) and "JSON" in record.getMessage():
            record.msg, record.args, record.exc_info = f"{record.msg} (skipped): {error}", (), None
        return True


def _only(catalog: Catalog) -> str:
    names = catalog.names()
    if len(names) != 1:
        raise ConfigurationError(
            f"choose what to serve with --agent NAME (or --profile NAME): "
            f"{', '.join(names) or 'nothing'} {'is' if len(names) == 1 else 'are'} available"
        )
    return names[0]


def _own_stdout() -> Any:
    """A file for the protocol on what was stdout; stdout itself (fd 1, ``sys.stdout``)
    now goes to stderr, so a stray print cannot break a message."""
    sys.stdout.flush()
    protocol = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    return protocol


async def _streams(stdin: Any, stdout: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=50 * 1024 * 1024)  # large resources in one line
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stdin)
    protocol = asyncio.streams.FlowControlMixin()
    if stat.S_ISREG(os.fstat(stdout.fileno()).st_mode):  # a file (a recorded session)
        transport: asyncio.WriteTransport = _FileTransport(stdout)
    else:
        transport, _ = await loop.connect_write_pipe(lambda: protocol, stdout)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


class _FileTransport(asyncio.WriteTransport):
    """Writes to a regular file, which asyncio's pipe transport refuses; a file never
    blocks for long, so each write is made at once."""

    def __init__(self, file: Any) -> None:
        super().__init__()
        self._file = file

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._file.write(data)

    def is_closing(self) -> bool:
        return self._file.closed

    def close(self) -> None:
        self._file.close()
