"""``ServeSettings``: everything the HTTP app is built from, and the bind-address rule."""

from __future__ import annotations

import functools
import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ..core.agent import Agent
    from ..teams import AgentTeam
    from ..tools.approval import ApprovalPolicy

__all__ = ["ServeSettings", "check_bind", "is_loopback", "TOKEN_VARIABLE"]

#: The environment variable holding the API token (never a command-line flag: those show
#: in ``ps`` and shell history).
TOKEN_VARIABLE = "VICTOR_API_TOKEN"


def _token_from_env() -> str | None:
    return os.environ.get(TOKEN_VARIABLE) or None


@dataclass
class ServeSettings:
    """What ``victor.serve.create_app`` builds the app from; nothing else is read.

    - ``agents``: names -> ``Agent``/``AgentTeam`` to serve; ``profiles``: profile names to
      serve as agents (default: every profile when ``agents`` is empty).
    - ``host``/``port``: where ``victor serve`` listens (127.0.0.1 unless a token is set).
    - ``token``: every request must send ``Authorization: Bearer <token>`` (default:
      ``$VICTOR_API_TOKEN``). Without one the server answers only on loopback.
    - ``approval``: the policy for tools that need approval, replacing the served agents'
      own: ``"never"`` (default, refuse), ``"auto"`` or a callback.
    - ``max_body_bytes`` (413 above it), ``max_concurrent_runs`` (429 above it),
      ``max_conversations`` (the least recently used is forgotten beyond it).
    - ``cors_origins``: origins a browser may call from (none by default: no CORS).
    - ``mcp``: serve MCP at ``/mcp`` (``None``: when the MCP SDK is installed).
    """

    agents: Mapping[str, Agent | AgentTeam] | None = None
    profiles: Sequence[str] | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = field(default_factory=_token_from_env, repr=False)
    approval: ApprovalPolicy = "never"
    max_body_bytes: int = 1_000_000
    max_concurrent_runs: int = 32
    max_conversations: int = 1000
    cors_origins: Sequence[str] = ()
    mcp: bool | None = None

    def check(self) -> ServeSettings:
        """Raise ``ConfigurationError`` naming the first bad setting; return self."""
        for label in ("max_body_bytes", "max_concurrent_runs", "max_conversations"):
            value: Any = getattr(self, label)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{label}={value!r} is invalid: use a positive integer")
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ConfigurationError(f"port={self.port!r} is invalid: use 0 to 65535")
        if self.token is not None and len(self.token) < 16:
            raise ConfigurationError(
                f"the API token is too short ({len(self.token)} characters): use at least 16 "
                f"random characters, e.g. from "
                f"python -c 'import secrets; print(secrets.token_urlsafe())'"
            )
        if isinstance(self.cors_origins, str):
            raise ConfigurationError(
                f"cors_origins={self.cors_origins!r} must be a list of origins, "
                f"e.g. ['http://localhost:3000']"
            )
        check_bind(self.host, self.token)
        return self


@functools.lru_cache(maxsize=64)  # asked for every request's local address
def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a token, saying why."""
    if token is None and not is_loopback(host):
        raise ConfigurationError(
            f"refusing to listen on {host!r} without an API token: anyone who can reach this "
            f"address could run your agents, their tools and your API keys. Set "
            f"{TOKEN_VARIABLE} (clients then send 'Authorization: Bearer <token>'), or listen "
            f"on 127.0.0.1"
        )
