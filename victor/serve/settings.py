"""``ServeSettings``: everything the HTTP app is built from (the bind-address rule it
checks is victor.hosting.security's, shared with the MCP server)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..hosting.security import TOKEN_VARIABLE, check_bind, is_loopback, token_from_env

if TYPE_CHECKING:
    from ..core.agent import Agent
    from ..teams import AgentTeam
    from ..tools.approval import ApprovalPolicy

__all__ = ["ServeSettings", "check_bind", "is_loopback", "TOKEN_VARIABLE"]


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
    token: str | None = field(default_factory=token_from_env, repr=False)
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
