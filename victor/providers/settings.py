"""The settings every provider takes, declared once: what each accepts and how to fix a bad
value (``Provider.__init__`` and ``Agent`` check them), and the explicit pass-through ones
(``extra_body`` & co.); ``check_options``, which checks a provider's options against
them."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .._util import Setting, check_settings, instance_setting, number_setting, unknown_setting
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from .base import Provider

__all__ = ["PROVIDER_SETTINGS", "PASS_THROUGH_SETTINGS", "check_options"]

#: The settings every provider takes besides ``model``: what each accepts, how to fix it.
PROVIDER_SETTINGS: dict[str, Setting] = {
    # The upper bound is the provider's: ``Provider.max_temperature``.
    "temperature": number_setting("use a number, 0.0 or more", at_least=0.0),
    "max_tokens": number_setting("use a positive integer", whole=True, above=0),
    "api_key": instance_setting(
        "use the key as a string, or set the provider's environment variable", str, secret=True
    ),
    "base_url": instance_setting(
        "use the endpoint's URL as a string, e.g. 'http://127.0.0.1:8000/v1'", str
    ),
    "timeout": number_setting(
        "use a positive number of seconds (e.g. timeout=30), or None for no limit",
        above=0,
        optional=True,
    ),
    "max_retries": number_setting(
        "use a whole number of retries, 0 or more (e.g. max_retries=2)", whole=True, at_least=0
    ),
}

#: Explicit pass-through: fields sent to the API as they are, for parameters a provider
#: does not name in ``api_options`` (``extra_body``), and the SDKs' request options.
PASS_THROUGH_SETTINGS: dict[str, Setting] = {
    "extra_body": instance_setting(
        "use a dict of fields to send in the request body as they are, e.g. "
        "extra_body={'top_k': 40}",
        Mapping,
    ),
    "extra_headers": instance_setting(
        "use a dict of HTTP header names to values, e.g. extra_headers={'x-trace': 'abc'}",
        Mapping,
    ),
    "extra_query": instance_setting(
        "use a dict of URL query parameters, e.g. extra_query={'api-version': '2024-06-01'}",
        Mapping,
    ),
}


def check_options(
    cls: type[Provider],
    options: Mapping[str, Any],
    also: Mapping[str, Iterable[str]] | None = None,
    where: str | None = None,
) -> None:
    """``ConfigurationError`` for an option ``cls`` does not take, with the closest name
    among its settings, its API parameters and ``also`` (e.g. the Agent's settings)."""
    check_settings(PASS_THROUGH_SETTINGS, options)
    known = cls.api_options
    if known is None:
        return
    takes = _init_keywords(cls)
    for name in options:
        if name in known or name in takes or name in PROVIDER_SETTINGS:
            continue
        groups = {
            **(also or {}),
            f"{cls.name} provider settings": sorted({*PROVIDER_SETTINGS, *takes}),
            f"{cls.name} API parameters": sorted(known),
        }
        raise ConfigurationError(
            unknown_setting(
                name,
                where or f"{cls.__name__}()",
                groups,
                f"To send a field the list does not have, pass it on purpose: "
                f"extra_body={{{name!r}: ...}}"
                if cls.takes_extra_body
                else "",
            )
        )


@lru_cache(maxsize=64)
def _init_keywords(cls: type[Provider]) -> frozenset[str]:
    """Keyword parameters the provider class's own ``__init__`` methods name."""
    from . import base  # the class whose __init__ takes the shared settings

    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is base.Provider:
            continue
        for parameter in inspect.signature(init).parameters.values():
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
                names.add(parameter.name)
    names.discard("self")
    return frozenset(names)
