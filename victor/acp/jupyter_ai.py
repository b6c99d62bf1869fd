"""The "Victor" persona for Jupyter AI's chat (extra ``jupyter-ai``): Jupyter AI's own ACP
client starts ``victor acp`` and talks to it over stdio.

Jupyter AI's persona manager finds the persona through the ``jupyter_ai.personas`` entry
point in pyproject.toml; ``import victor`` never imports this module. The agent is the one
``victor acp`` serves: the user's victor configuration (the ``default`` profile: the
server's ``VICTOR_PROVIDER`` and ``VICTOR_MODEL``, or ``[profiles.default]`` in
profiles.toml; the API keys in the server's environment), or what the Jupyter server's
configuration names::

    # jupyter_server_config.py
    c.VictorAcpPersona.profile = "reviewer"        # victor acp --profile reviewer
    c.VictorAcpPersona.app = "~/agents/app.py"     # victor acp ~/agents/app.py
    c.VictorAcpPersona.agent = "helper"            #   ... --agent helper
"""

from __future__ import annotations

import sys
from pathlib import Path

from .._util import missing_extra
from ..errors import ConfigurationError


def _unmet(missing: str) -> Exception:
    """The error for a missing package: the persona manager's own "requirements unmet" (it
    logs it instead of showing an error in every chat) when the manager is there."""
    error = missing_extra("jupyter-ai", "the Victor persona", f"jupyter-ai-acp-client ({missing})")
    try:
        from jupyter_ai_persona_manager import PersonaRequirementsUnmet
    except ImportError:
        return error
    return PersonaRequirementsUnmet(str(error))


try:
    from jupyter_ai_acp_client.base_acp_persona import BaseAcpPersona
    from jupyter_ai_persona_manager import PersonaDefaults
    from traitlets import Unicode
except ImportError as exc:  # Jupyter AI without its ACP client, or no Jupyter AI at all
    raise _unmet(f"{exc.name} is missing") from None

__all__ = ["VictorAcpPersona", "avatar_path"]

_PACKAGE = Path(__file__).resolve().parents[1]


def avatar_path() -> str:
    """The persona's picture: inside the installed package (the wheel puts ``widgets/``
    there) or in the source checkout; "" (no picture) if neither has it."""
    for path in (_PACKAGE / "widgets", _PACKAGE.parent / "widgets"):
        if (path / "victor-avatar.svg").is_file():
            return str(path / "victor-avatar.svg")
    return ""


class VictorAcpPersona(BaseAcpPersona):
    """A victor agent in Jupyter AI's chat, served by ``victor acp`` in a subprocess."""

    app = Unicode(
        "",
        help="A Python file (or module) whose agent or team to serve, as `victor acp APP`.",
    ).tag(config=True)
    agent = Unicode("", help="Which agent of the app to serve (`--agent NAME`).").tag(config=True)
    profile = Unicode(
        "",
        help="Serve this victor profile (`--profile NAME`); with neither app nor profile, "
        "the `default` profile: the user's victor configuration.",
    ).tag(config=True)

    def __init__(self, *args, **kwargs) -> None:
        # traitlets sets the configured app/agent/profile inside super().__init__, so the
        # command is complete only after it: BaseAcpPersona keeps it in _executable and
        # reads it when it starts the subprocess (on the first message).
        super().__init__(*args, executable=[], **kwargs)
        self._executable = self.command()

    def command(self) -> list[str]:
        """The command line of the agent subprocess. ``python -m victor`` with the server's
        own Python, which has victor installed even where ``victor`` is not on PATH."""
        argv = [sys.executable, "-m", "victor", "acp"]
        if self.app:
            argv.append(str(Path(self.app).expanduser()))
        if self.agent:
            argv += ["--agent", self.agent]
        # The default profile follows VICTOR_PROVIDER and VICTOR_MODEL, or the user's
        # [profiles.default] (tools, system prompt) in profiles.toml.
        profile = self.profile or ("" if self.app else "default")
        if profile:
            argv += ["--profile", profile]
        return argv

    @property
    def defaults(self) -> PersonaDefaults:
        serves = " ".join(["victor acp", *self.command()[4:]])
        return PersonaDefaults(
            name="Victor",
            description=f"A victor agent over ACP ({serves}): its model, tools and approvals.",
            avatar_path=avatar_path(),
            system_prompt="unused",  # the agent's own system prompt applies
        )

    async def prepare(self) -> None:
        """Check the configured profile and app file before Jupyter AI starts anything, so a
        typo is a clear message in the chat (not a subprocess that exits with it on the
        server's stderr), and no startup task is left failed behind it."""
        self.check_configuration()
        await super().prepare()

    def check_configuration(self) -> None:
        """A ``ConfigurationError`` for a profile that does not exist or an app file that
        is not there."""
        if self.profile:
            from ..config import load_profile

            load_profile(self.profile)  # ConfigurationError naming the known profiles
        if self.app:
            name = Path(self.app).name  # app.py:helper names one agent of app.py
            file = self.app[: len(self.app) - len(name)] + name.split(":")[0]
            if file.endswith(".py") and not Path(file).expanduser().is_file():
                raise ConfigurationError(
                    f"c.VictorAcpPersona.app is {self.app!r}, but {file} is not a file: "
                    "give the path of the Python file that defines the agent"
                )
