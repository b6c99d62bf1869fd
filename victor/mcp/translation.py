"""Translation between victor and the MCP SDK for the client: what a target is (a command,
a URL, an in-process server) and what it is called, an MCP tool result as a
``ToolResult``, and SDK errors as one line a person can read.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from typing import Any

from ..errors import ConfigurationError
from ..tools.base import ToolResult

__all__ = [
    "parse_target",
    "safe_name",
    "strip_credentials",
    "to_result",
    "connection_lost",
    "innermost",
    "describe",
]

#: A tool name every provider accepts (Anthropic and OpenAI: 64 of these characters).
_VALID_NAME = re.compile(r"[^A-Za-z0-9_-]")


def parse_target(target: Any) -> tuple[str, Any, str]:
    """(kind, what the SDK gets, a label for names and messages)."""
    if isinstance(target, str):
        text = target.strip()
        if not text:
            raise ConfigurationError("victor.mcp.server('') is empty: give a command or a URL")
        if re.match(r"^https?://", text, re.IGNORECASE):
            from urllib.parse import urlsplit

            host = urlsplit(text).hostname or "mcp"
            return "url", text, host.split(".")[0] if not _is_ip(host) else "mcp"
        argv = shlex.split(text)
        return "stdio", argv, _command_label(argv)
    if isinstance(target, (list, tuple)) and target and all(isinstance(a, str) for a in target):
        return "stdio", [str(a) for a in target], _command_label(list(target))
    module = type(target).__module__ or ""
    if module.startswith("mcp.server"):
        return "object", target, str(getattr(target, "name", "") or "mcp")
    raise ConfigurationError(
        f"victor.mcp.server({target!r}) is not an MCP server: give a command line "
        f"('npx -y some-server'), a URL ('http://127.0.0.1:8000/mcp'), or an "
        f"mcp.server.MCPServer"
    )


def _command_label(argv: list[str]) -> str:
    """A short name for a command: the package or script it runs, not the runner."""
    runners = {"npx", "uvx", "uv", "pipx", "node", "deno", "bun", "docker"}
    words = [a for a in argv if not a.startswith("-")]
    base = os.path.basename(words[0]) if words else "mcp"
    if base.startswith("python") and ("-m" in argv or "-c" in argv):
        after = argv.index("-m") + 1 if "-m" in argv else 0
        base = argv[after].split(".")[0] if after and after < len(argv) else "python"
    elif base in runners or base.startswith("python"):
        rest = [w for w in words[1:] if w not in ("run", "exec")]
        if rest:
            base = rest[-1] if base == "docker" else rest[0]
    base = base.rsplit("/", 1)[-1]
    for suffix in (".py", ".js", ".ts", ".mjs"):
        base = base.removesuffix(suffix)
    base = re.sub(r"^(server-|mcp-server-|mcp-)", "", base)
    base = re.sub(r"(-mcp|-server|_server|-mcp-server)$", "", base)
    return base or "mcp"


def safe_name(name: str) -> str:
    return _VALID_NAME.sub("_", name)[:64] or "mcp"


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    return True


def strip_credentials(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def to_result(result: Any) -> ToolResult:
    """An MCP ``CallToolResult`` as a ``ToolResult`` (``is_error`` becomes a failure)."""
    text = "\n".join(_content_text(block) for block in result.content or ())
    metadata: dict[str, Any] = {}
    if result.structured_content is not None:
        metadata["structured"] = result.structured_content
    if result.is_error:
        return ToolResult.fail(text or "the tool reported an error without a message", **metadata)
    if not text and result.structured_content is not None:
        text = json.dumps(result.structured_content, ensure_ascii=False, default=str)
    return ToolResult(success=True, output=text, metadata=metadata)


def _content_text(block: Any) -> str:
    kind = getattr(block, "type", "")
    if kind == "text":
        return str(block.text)
    if kind in ("image", "audio"):
        size = len(block.data) * 3 // 4
        return f"[{kind}: {block.mime_type}, about {size} bytes]"
    if kind == "resource_link":
        return f"[resource: {block.uri}]"
    if kind == "resource":
        resource = block.resource
        text = getattr(resource, "text", None)
        return text if text is not None else f"[resource: {resource.uri}]"
    return f"[{kind or 'content'}]"


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection to the server is gone (not that a call failed)."""
    import anyio
    from mcp import MCPError
    from mcp.types import CONNECTION_CLOSED

    leaf = innermost(exc)
    if isinstance(leaf, MCPError):
        return leaf.code == CONNECTION_CLOSED
    return isinstance(leaf, (anyio.ClosedResourceError, anyio.BrokenResourceError))


def innermost(exc: BaseException) -> BaseException:
    """The first error inside an exception group (anyio's task groups raise those)."""
    while getattr(exc, "exceptions", None):
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    return exc


def describe(exc: BaseException) -> str:
    """The innermost error of an exception (group) as one line."""
    exc = innermost(exc)
    message = str(exc) or type(exc).__name__
    if isinstance(exc, FileNotFoundError) and exc.filename:
        message = f"{exc.filename!r} was not found (is it installed and on PATH?)"
    return message if type(exc).__name__ in message else f"{type(exc).__name__}: {message}"
