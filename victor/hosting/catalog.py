"""What a server offers: agents and teams by name, from a Python file or from profiles.

``victor serve``, ``victor mcp serve`` and ``victor acp`` share it. Each request gets its
own view of an agent (a shallow copy: the same provider and tools, its own conversation and
``last_run``), so concurrent requests never see each other's state. The server's approval
policy replaces the served agents' own while the catalog is open, and is put back when it
closes.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import importlib.util
import sys
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ..core.agent import Agent
    from ..teams import AgentTeam
    from ..tools.approval import ApprovalPolicy

__all__ = ["Catalog", "by_name", "load_app"]

Kind = Literal["agent", "team"]


class Catalog:
    """Agents and teams by name; profiles become agents on first use.

    ``served`` maps names to ``Agent``/``AgentTeam`` objects (one object under several
    names: the first is its name, the others aliases that reach it too); ``profiles`` names
    profiles to offer as agents (default: every profile when nothing else is served, none
    otherwise).
    """

    def __init__(
        self,
        served: Mapping[str, Agent | AgentTeam] | None = None,
        *,
        profiles: Iterable[str] | None = None,
        approval: ApprovalPolicy = "never",
    ) -> None:
        from ..config import list_profiles, load_profile
        from ..core.agent import Agent
        from ..teams import AgentTeam
        from ..tools.approval import check_policy

        self.approval = check_policy(approval)
        self._served: dict[str, Agent | AgentTeam] = {}  # by every name, aliases included
        self._aliases: dict[str, list[str]] = {}  # a name -> the other names of its object
        first: dict[int, str] = {}
        for name, value in (served or {}).items():
            if not isinstance(value, (Agent, AgentTeam)):
                raise ConfigurationError(
                    f"{name}={value!r} cannot be served: give an Agent or an AgentTeam"
                )
            self._served[name] = value
            primary = first.setdefault(id(value), name)
            self._aliases.setdefault(primary, [])
            if primary != name:
                self._aliases[primary].append(name)
        if profiles is None:
            profiles = () if self._served else list_profiles()
        self._profiles = {name: load_profile(name) for name in profiles if name not in self._served}
        self._made: dict[str, Agent] = {}
        self._making: dict[str, asyncio.Lock] = {}
        self._saved: list[tuple[Agent, Any]] = []
        self._opened = 0  # open() and close() nest: an MCP server inside victor serve

    # -- what is there ---------------------------------------------------------------

    def kind(self, name: str) -> Kind | None:
        """``"agent"``, ``"team"``, or None if nothing is served under ``name``."""
        from ..teams import AgentTeam

        if name in self._served:
            return "team" if isinstance(self._served[name], AgentTeam) else "agent"
        return "agent" if name in self._profiles else None

    def names(self, kind: Kind | None = None) -> list[str]:
        """One name per agent or team served (aliases left out)."""
        every = [*self._aliases, *self._profiles]
        return [n for n in every if kind is None or self.kind(n) == kind]

    def describe(self) -> list[dict[str, Any]]:
        """One JSON-ready description per served name (no secrets: no keys, no options)."""
        from ..teams import AgentTeam

        out: list[dict[str, Any]] = []
        for name, aliases in self._aliases.items():
            value = self._served[name]
            if isinstance(value, AgentTeam):
                out.append(
                    {
                        "name": name,
                        "aliases": aliases,
                        "kind": "team",
                        "formation": value.formation,
                        "members": [m.name for m in value.members],
                    }
                )
            else:
                out.append(
                    {
                        "name": name,
                        "aliases": aliases,
                        "kind": "agent",
                        "source": "app",
                        "role": value.role,
                        "provider": value.provider.name,
                        "model": value.provider.model,
                        "tools": [t.name for t in value.tools],
                    }
                )
        for name, profile in self._profiles.items():
            out.append(
                {
                    "name": name,
                    "aliases": [],
                    "kind": "agent",
                    "source": "profile",
                    "role": None,
                    "provider": profile.provider,
                    "model": profile.model,
                    "tools": list(profile.tools),
                }
            )
        return out

    def missing(self, name: str, kind: Kind) -> str:
        """The message for a name that is not served as ``kind``."""
        from .._util import did_you_mean

        names = self.names(kind)
        listing = ", ".join(names) or "none"
        return f"no {kind} named {name!r} is served.{did_you_mean(name, names)} Served: {listing}"

    # -- per-request views -----------------------------------------------------------

    async def agent(self, name: str) -> Agent:
        """A fresh view of the agent ``name``: shared provider and tools, its own state."""
        if self.kind(name) != "agent":
            raise ConfigurationError(self.missing(name, "agent"))
        base = self._served.get(name) or await self._from_profile(name)
        view = copy.copy(base)
        view.history = []
        view.last_run = None
        return view  # type: ignore[return-value]

    async def team(self, name: str) -> AgentTeam:
        """A view of the team ``name`` whose ``last_result`` is this request's."""
        if self.kind(name) != "team":
            raise ConfigurationError(self.missing(name, "team"))
        view = copy.copy(self._served[name])
        view.last_result = None
        return view  # type: ignore[return-value]

    async def _from_profile(self, name: str) -> Agent:
        from ..core.agent import Agent

        if name not in self._made:
            async with self._making.setdefault(name, asyncio.Lock()):
                if name not in self._made:
                    made = await Agent.from_profile(self._profiles[name], approval=self.approval)
                    self._made[name] = made
        return self._made[name]

    # -- lifetime --------------------------------------------------------------------

    def _objects(self) -> list[Agent | AgentTeam]:
        """Each agent and team served, once (not once per alias)."""
        return [self._served[name] for name in self._aliases]

    def open(self) -> None:
        """Put the server's approval policy on every served agent and team member."""
        from ..teams import AgentTeam

        self._opened += 1
        if self._opened > 1:
            return
        for value in self._objects():
            agents = value.members if isinstance(value, AgentTeam) else [value]
            for agent in agents:
                self._saved.append((agent, agent.approval))
                agent.approval = self.approval

    async def close(self) -> None:
        """Give the agents their own approval policies back and close their connections."""
        from ..teams import AgentTeam

        self._opened -= 1
        if self._opened > 0:
            return
        for agent, approval in reversed(self._saved):
            agent.approval = approval
        self._saved.clear()
        closers = [agent.cleanup() for agent in self._made.values()]
        for value in self._objects():
            closers.append(value.cleanup() if isinstance(value, AgentTeam) else value.cleanup())
        await asyncio.gather(*closers, return_exceptions=True)
        self._made.clear()


def load_app(spec: str) -> dict[str, Agent | AgentTeam]:
    """The agents and teams a Python file (or module) defines at top level, by name.

    ``"app.py"`` serves every ``Agent``/``AgentTeam`` in it, ``"app.py:helper"`` only
    ``helper``; ``"package.module:name"`` works too (like uvicorn). Each is served under
    its own name if it was given one (``Agent(name="echo")``) and under its variable's name
    (unless another claims that name); an agent given neither a name nor a role takes its
    variable's name. Two agents with one name are a ``ConfigurationError``.
    """
    from ..core.agent import Agent
    from ..teams import AgentTeam

    where, _, attribute = spec.rpartition(":") if _has_attribute(spec) else (spec, "", "")
    module = _import(where)
    found = {
        name: value
        for name, value in vars(module).items()
        if isinstance(value, (Agent, AgentTeam)) and not name.startswith("_")
    }
    if attribute:
        if attribute not in vars(module):
            raise ConfigurationError(
                f"{where} has no {attribute!r}; it defines: {', '.join(found) or 'no agents'}"
            )
        value = vars(module)[attribute]
        if not isinstance(value, (Agent, AgentTeam)):
            raise ConfigurationError(
                f"{where}:{attribute} is a {type(value).__name__}, not an Agent or AgentTeam"
            )
        return by_name({attribute: value}, where)
    if not found:
        raise ConfigurationError(
            f"{where} defines no Agent or AgentTeam at top level; add one, e.g. "
            f"agent = Agent(role='helper', provider='anthropic')"
        )
    return by_name(found, where)


def by_name(
    variables: Mapping[str, Agent | AgentTeam], where: str = "the app"
) -> dict[str, Agent | AgentTeam]:
    """``variables`` (variable name -> agent or team) keyed by the names they are served
    under: each one's own name first if it was given one, then its variable's name unless
    another's own name is the same. An agent named by nothing (``name`` or ``role``)
    takes its variable's name, so its events and approval prompts say who it is."""
    from ..core.agent import DEFAULT_NAME, Agent
    from ..teams import AgentTeam

    teams = [value for value in variables.values() if isinstance(value, AgentTeam)]
    own: dict[str, tuple[str, Agent | AgentTeam]] = {}  # own name -> (variable, object)
    for variable, value in variables.items():
        name = _own_name(value)
        if name is None:
            continue
        claimed = own.setdefault(name, (variable, value))
        if claimed[1] is not value:
            raise ConfigurationError(
                f"{where}: {claimed[0]} and {variable} are both named {name!r}; a server "
                f"reaches each by its name, so give them different names"
            )
    served: dict[str, Agent | AgentTeam] = {}
    for variable, value in variables.items():
        name = _own_name(value)
        if name is not None:
            served[name] = value
        elif isinstance(value, Agent) and value.role is None and value.name == DEFAULT_NAME:
            teammates = [m.name for t in teams if value in t.members for m in t.members]
            if variable not in teammates:  # a team tells its members apart by name
                value.name = variable
        holder = own.get(variable)
        if holder is None or holder[1] is value:
            served.setdefault(variable, value)
        elif name is None:  # its variable's name is its only name, and another has it
            raise ConfigurationError(
                f"{where}: {variable} would be served as {variable!r}, but {holder[0]} is "
                f"named {variable!r}; rename one of them (or give {variable} a name=...)"
            )
    return served


def _own_name(value: Agent | AgentTeam) -> str | None:
    """The name ``value`` was given (``name=...``), or None for a default one."""
    from ..core.agent import Agent

    if isinstance(value, Agent):
        return value.name if value._name_given else None
    return value.name if value.name != value.formation else None  # a team's default


def _has_attribute(spec: str) -> bool:
    head, sep, tail = spec.rpartition(":")
    return bool(sep and head and tail.isidentifier())


def _import(where: str) -> Any:
    path = Path(where)
    try:
        if path.suffix == ".py" or path.is_file():
            if not path.is_file():
                raise ConfigurationError(f"{where}: no such file")
            name = path.stem
            directory = str(path.resolve().parent)
            if directory not in sys.path:
                sys.path.insert(0, directory)  # its own imports work, as under uvicorn
            module_spec = importlib.util.spec_from_file_location(name, path)
            assert module_spec is not None and module_spec.loader is not None
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
            return module
        return importlib.import_module(where)
    except ConfigurationError:
        raise
    except Exception as exc:
        here = path.resolve()
        frames = [
            f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == here
        ]
        at = f" (line {frames[-1].lineno})" if frames else ""
        raise ConfigurationError(f"cannot load {where}{at}: {type(exc).__name__}: {exc}") from exc
