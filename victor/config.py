"""Configuration: settings from the environment, named profiles, and victor's logging.

Profiles are built in (``default``, ``development``, ``production``, ``local``,
``deterministic``) and can be added or overridden in ``~/.victor/profiles.toml``
(``$VICTOR_HOME/profiles.toml``)::

    [profiles.production]
    model = "claude-opus-4-20250514"     # other fields keep the built-in values

    [profiles.reviewer]
    provider = "openai"
    model = "gpt-4o-mini"
    temperature = 0.2
    system_prompt = "You review Python code."
    tools = ["read_file", "git_diff"]

API keys never belong here: providers read them from their own environment variables.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._secrets import SecretFilter
from ._util import did_you_mean
from .errors import ConfigurationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 needs the backport
    import tomli as tomllib

__all__ = [
    "LOG_LEVELS",
    "Profile",
    "Settings",
    "configure_logging",
    "list_profiles",
    "load_profile",
    "profiles_path",
    "settings",
    "victor_home",
]

DEFAULT_PROVIDER = "ollama"
DEFAULT_LOG_LEVEL = "WARNING"
LOG_LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _env(name: str) -> str | None:
    """An environment variable, with an empty or blank value treated as unset."""
    value = os.environ.get(name, "").strip()
    return value or None


def victor_home() -> Path:
    """victor's own directory: ``$VICTOR_HOME``, else ``~/.victor``."""
    home = _env("VICTOR_HOME")
    return Path(home).expanduser() if home else Path.home() / ".victor"


def profiles_path() -> Path:
    """Where user profiles live: ``victor_home() / "profiles.toml"``."""
    return victor_home() / "profiles.toml"


# -- settings from the environment -----------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """victor's settings as the environment has them right now."""

    provider: str
    model: str | None
    log_level: str
    home: Path


def settings() -> Settings:
    """Read ``VICTOR_PROVIDER``, ``VICTOR_MODEL``, ``VICTOR_LOG_LEVEL``, ``VICTOR_HOME``.

    Read on every call, not cached, so changes to ``os.environ`` (common in notebooks)
    take effect at once.
    """
    return Settings(
        provider=(_env("VICTOR_PROVIDER") or DEFAULT_PROVIDER).lower(),
        model=_env("VICTOR_MODEL"),
        log_level=(_env("VICTOR_LOG_LEVEL") or DEFAULT_LOG_LEVEL).upper(),
        home=victor_home(),
    )


def configure_logging(level: str | None = None) -> logging.Logger:
    """Set the ``victor`` logger's level from ``level`` or ``VICTOR_LOG_LEVEL``.

    Adds one stderr handler only if the logger has none, so calling this twice (or after
    the application set up its own handler) never duplicates output.
    """
    name = (level or settings().log_level).strip().upper()
    if name not in LOG_LEVELS:
        raise ConfigurationError(
            f"Invalid log level {name!r} (VICTOR_LOG_LEVEL); valid levels: {', '.join(LOG_LEVELS)}"
        )
    victor_logger = logging.getLogger("victor")
    victor_logger.setLevel(name)
    if not victor_logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(SecretFilter())  # also for victor loggers that do not scrub themselves
        victor_logger.addHandler(handler)
    return victor_logger


# -- profiles --------------------------------------------------------------------------


class Profile(BaseModel):
    """A named set of agent settings: provider, model, sampling, prompt and tools.

    Invalid values raise ``ConfigurationError`` naming the profile and the field.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str
    provider: str = DEFAULT_PROVIDER
    model: str | None = None
    #: Its upper bound is the provider's (``Provider.max_temperature``), checked when an
    #: agent is made from the profile.
    temperature: float = Field(default=0.7, ge=0.0)
    max_tokens: int = Field(default=4096, gt=0)
    system_prompt: str | None = None
    tools: list[str] = Field(default_factory=list)
    #: Extra keyword arguments for the provider (e.g. ``base_url``, ``top_p``).
    options: dict[str, Any] = Field(default_factory=dict)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigurationError(_describe(data.get("name"), exc)) from None

    def __setattr__(self, name: str, value: Any) -> None:
        # validate_assignment raises pydantic's error; users should only see victor's.
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise ConfigurationError(_describe(self.name, exc)) from None


def _describe(profile_name: Any, exc: ValidationError) -> str:
    """Turn pydantic's report into one line per bad field, naming the profile."""
    problems = []
    fields = list(Profile.model_fields)
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "(profile)"
        if error["type"] == "extra_forbidden":
            hint = did_you_mean(field, fields).strip() or f"Fields: {', '.join(fields)}"
            problems.append(f"unknown field {field!r} ({hint[0].lower()}{hint[1:]})")
        else:
            problems.append(f"field {field!r}: {error['msg']} (got {error.get('input')!r})")
    return f"Invalid profile {profile_name!r}: " + "; ".join(problems)


def _builtin_profiles() -> dict[str, dict[str, Any]]:
    """Built-in profile fields, rebuilt per call so ``default`` follows the environment."""
    env = settings()
    return {
        "default": {"provider": env.provider, "model": env.model},
        "development": {"provider": "ollama", "temperature": 0.7},
        "production": {
            "provider": "anthropic",
            "model": "claude-sonnet-4-20250514",
            "temperature": 0.3,
        },
        # model None: the local provider loads the GGUF model shipped with victor[local].
        "local": {"provider": "local"},
        "deterministic": {"temperature": 0.0},
    }


def _read_profiles_file(path: Path) -> dict[str, dict[str, Any]]:
    """The ``[profiles.NAME]`` tables of the user's profiles file ({} if there is none)."""
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"Malformed profiles file {path}: {exc}") from None
    except OSError as exc:
        raise ConfigurationError(f"Cannot read profiles file {path}: {exc}") from exc
    tables = document.get("profiles", {})
    if not isinstance(tables, dict):
        raise ConfigurationError(
            f"Malformed profiles file {path}: 'profiles' must be tables like [profiles.NAME]"
        )
    for name, fields in tables.items():
        if not isinstance(fields, dict):
            raise ConfigurationError(
                f"Malformed profiles file {path}: profiles.{name} must be a table "
                f"([profiles.{name}]), not a {type(fields).__name__}"
            )
    return tables


def list_profiles() -> dict[str, Profile]:
    """Every available profile by name: built-ins, overridden or extended by the file.

    A file table for a built-in name changes only the fields it sets.
    """
    path = profiles_path()
    merged = _builtin_profiles()
    for name, fields in _read_profiles_file(path).items():
        # The table name is the profile's name; a "name" key inside would only disagree.
        merged[name] = {**merged.get(name, {}), **{k: v for k, v in fields.items() if k != "name"}}
    profiles: dict[str, Profile] = {}
    for name, fields in merged.items():
        try:
            profiles[name] = Profile(**fields, name=name)
        except ConfigurationError as exc:
            # Built-ins are valid, so the cause is the user's table: point at it.
            raise ConfigurationError(f"{exc}. Fix [profiles.{name}] in {path}") from None
    return profiles


def load_profile(name: str) -> Profile:
    """The profile called ``name``; ``ConfigurationError`` listing the choices if unknown."""
    profiles = list_profiles()
    if name in profiles:
        return profiles[name]
    hint = did_you_mean(name, profiles)
    raise ConfigurationError(
        f"Unknown profile {name!r}.{hint} Available: {', '.join(sorted(profiles))}. "
        f"Add one as a [profiles.{name}] table in {profiles_path()}"
    )
