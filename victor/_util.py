"""Small helpers shared across victor (no public API)."""

from __future__ import annotations

import contextvars
import inspect
import ipaddress
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")
P = ParamSpec("P")


async def maybe_await(value: Any) -> Any:
    """Await ``value`` if it is awaitable, so callers accept sync and async callbacks alike."""
    if inspect.isawaitable(value):
        return await value
    return value


def new_id(prefix: str) -> str:
    """A short unique id such as ``run_1f3a9c2b7d4e``."""
    return f"{prefix}_{os.urandom(6).hex()}"


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: pydantic models and dataclasses as dicts, tuples and
    sets as lists, dates as ISO text, enums as their values; anything else JSON cannot
    hold as its ``str``. For answers served over HTTP and batch checkpoints alike."""
    from pydantic_core import to_jsonable_python

    return to_jsonable_python(value, fallback=str)


def forwards_to(target: Callable[P, T]) -> Callable[[Callable[..., T]], Callable[P, T]]:
    """Decorator for a function that only calls ``target`` (a class: its constructor) with
    what it was given: its parameters are ``target``'s, declared once there. ``help()``
    and ``inspect.signature`` show them (``__signature__``), type checkers see them
    (``ParamSpec``); the function keeps its own name and docstring."""

    def forward(function: Callable[..., T]) -> Callable[P, T]:
        returns = inspect.signature(function).return_annotation
        function.__signature__ = inspect.signature(target).replace(  # type: ignore[attr-defined]
            return_annotation=returns
        )
        return function

    return forward


def did_you_mean(name: str, choices: Iterable[str], n: int = 1, cutoff: float = 0.6) -> str:
    """`` Did you mean 'x'?`` for the closest of ``choices`` to a mistyped ``name``, or ""."""
    import difflib  # only an error message needs it

    close = difflib.get_close_matches(name, list(choices), n=n, cutoff=cutoff)
    return f" Did you mean {', '.join(map(repr, close))}?" if close else ""


def missing_extra(
    extra: str,
    purpose: str,
    what: str,
    *,
    install: Callable[[], str] | None = None,
    hint: str = "",
    error: ImportError | None = None,
) -> Exception:
    """The ``ConfigurationError`` for an optional dependency that is not installed: what
    ``purpose`` needs (and the import's ``error``, if given), the line that installs it
    (``pip install "victor-ai[extra]"``, or ``install()``), then ``hint``."""
    from .errors import ConfigurationError

    line = install() if install is not None else f'pip install "victor-ai[{extra}]"'
    message = f"{purpose} needs {what}{f' ({error})' if error else ''}: {line}"
    return ConfigurationError(f"{message} {hint}" if hint else message)


@contextmanager
def needs_extra(
    extra: str,
    purpose: str,
    *,
    what: str | None = None,
    install: Callable[[], str] | None = None,
    hint: str = "",
) -> Iterator[None]:
    """``with needs_extra("serve", "victor serve"): import uvicorn``: an import in the block
    that fails raises ``missing_extra(...)``, naming ``what`` (else the missing module), and
    the import's own error where the message would not name the missing module. A missing
    victor module is a bug, not a missing extra: it is raised as it is."""
    try:
        yield
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing == "victor":
            raise
        named = what is None or missing in what.lower().replace("-", "_")
        shown = None if isinstance(exc, ModuleNotFoundError) and named else exc
        raise missing_extra(
            extra, purpose, what or missing, install=install, hint=hint, error=shown
        ) from None


class bound(Generic[T]):
    """``with bound(var, value):`` sets ``var`` to ``value`` for the block, then restores it.

    A class, not a ``@contextmanager`` generator: every run enters a few of these, and a
    generator-based one costs several times as much.
    """

    __slots__ = ("_var", "_value", "_token")

    def __init__(self, var: contextvars.ContextVar[T], value: T) -> None:
        self._var = var
        self._value = value

    def __enter__(self) -> T:
        self._token = self._var.set(self._value)
        return self._value

    def __exit__(self, *exc: object) -> None:
        try:
            self._var.reset(self._token)
        except ValueError:  # an async generator closed from another context (e.g. by GC)
            pass


# -- settings: declared once, checked at construction ---------------------------------


@dataclass(frozen=True, slots=True)
class Setting:
    """What a keyword setting accepts, and how to fix a value it does not.

    ``accepts`` is a predicate on the value; a setting with a checker of its own gives
    ``validate`` instead (it raises ``ConfigurationError`` itself). ``secret`` settings
    never have their value shown in a message.
    """

    accepts: Callable[[Any], bool] | None = None
    fix: str = ""
    validate: Callable[[Any], object] | None = None
    secret: bool = False

    def check(self, name: str, value: Any) -> None:
        """``ConfigurationError`` naming ``name``, the value and the fix if it is bad."""
        if self.validate is not None:
            self.validate(value)
        elif self.accepts is not None and not self.accepts(value):
            from .errors import ConfigurationError

            shown = f"<{type(value).__name__}>" if self.secret else repr(value)
            raise ConfigurationError(f"{name}={shown} is invalid: {self.fix}")


def check_settings(table: Mapping[str, Setting], values: Mapping[str, Any]) -> None:
    """Check every value whose name ``table`` declares."""
    for name, value in values.items():
        setting = table.get(name)
        if setting is not None:
            setting.check(name, value)


def is_number(value: Any) -> bool:
    """A real, finite number (``True``/``False`` are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_whole(value: Any) -> bool:
    """An ``int`` (not a ``bool``)."""
    return isinstance(value, int) and not isinstance(value, bool)


def number_setting(
    fix: str,
    *,
    above: float | None = None,
    at_least: float | None = None,
    at_most: float | None = None,
    whole: bool = False,
    optional: bool = False,
) -> Setting:
    """A numeric setting: an int (``whole``) or any number, within the bounds given;
    ``optional`` lets ``None`` through."""

    def accepts(value: Any) -> bool:
        if value is None:
            return optional
        if not (is_whole(value) if whole else is_number(value)):
            return False
        return (
            (above is None or value > above)
            and (at_least is None or value >= at_least)
            and (at_most is None or value <= at_most)
        )

    return Setting(accepts, fix)


def instance_setting(
    fix: str, *types: type, optional: bool = True, secret: bool = False
) -> Setting:
    """A setting that is an instance of one of ``types`` (or ``None`` when ``optional``)."""
    return Setting(
        lambda value: (optional and value is None) or isinstance(value, types), fix, secret=secret
    )


def unknown_setting(name: str, where: str, groups: Mapping[str, Iterable[str]], hint: str) -> str:
    """The message for a keyword nobody takes: the closest known name, then every known
    name by group (``{"Agent settings": [...], "anthropic API parameters": [...]}``)."""
    known = [n for names in groups.values() for n in names]
    listed = "; ".join(f"{group}: {', '.join(sorted(names))}" for group, names in groups.items())
    message = f"{where} got an unknown setting {name!r}.{did_you_mean(name, known)} {listed}."
    return f"{message} {hint}" if hint else message


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_is_loopback(url: str) -> bool:
    """Whether ``url`` (with or without a scheme) points at this machine only."""
    return is_loopback(urlsplit(url if "//" in url else f"//{url}").hostname or "")
