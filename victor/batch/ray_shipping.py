"""Sending a batch's agent to Ray actors: pickled without its API keys (they travel as
environment variables), connections or loaded model, which each actor makes anew."""

from __future__ import annotations

import io
import os
import threading
import weakref
from typing import Any

from ..core.events import EventBus
from ..errors import ConfigurationError
from ..providers.base import Provider, available_providers, get_provider_class

__all__ = ["ship", "provider_environment", "VICTOR_ENV"]

#: Driver variables the actors get besides the providers' own (keys and base URLs).
VICTOR_ENV = ("VICTOR_PROVIDER", "VICTOR_MODEL", "VICTOR_LOG_LEVEL")

#: What providers make on first use (victor/providers/base.py, local.py): connections, a
#: loaded model and its lock. An actor makes its own; these are not shipped.
_FRESH: dict[str, Any] = {
    "_clients": weakref.WeakKeyDictionary,
    "_replay_clients": weakref.WeakKeyDictionary,
    "_shared": lambda: None,
    "_release": lambda: None,
    "_loading": threading.Lock,
}
_LOCKS = (type(threading.Lock()), type(threading.RLock()))


def ship(target: Any) -> tuple[bytes, dict[str, str]]:
    """Pickle ``target`` (an agent, team or function using them) for the actors: providers
    without their API key, connections or loaded model, event buses as the actor's own.

    Returns the pickle and the keys taken out, by the variable that carries each.
    """
    from ray import cloudpickle

    keys: dict[str, str] = {}

    class _Pickler(cloudpickle.CloudPickler):
        def reducer_override(self, obj: Any) -> Any:
            if isinstance(obj, Provider):
                return _provider_reduction(obj, keys)
            if isinstance(obj, EventBus):
                return _actor_bus, (obj is EventBus.default(),)
            if isinstance(obj, _LOCKS):
                return type(obj), ()
            return super().reducer_override(obj)

    buffer = io.BytesIO()
    try:
        _Pickler(buffer, protocol=5).dump(target)
    except Exception as exc:
        raise ConfigurationError(
            f"the agent cannot be sent to Ray actors: {exc}. Pass a function that builds the "
            f"agent from plain settings instead (batch(items, lambda item: Agent(...), ...))"
        ) from exc
    return buffer.getvalue(), keys


def _provider_reduction(provider: Provider, keys: dict[str, str]) -> tuple[Any, ...]:
    state = {k: v for k, v in vars(provider).items() if k not in _FRESH}
    key = state.pop("_api_key", None)
    if key:
        variable = provider.api_key_env
        if variable is None:
            raise ConfigurationError(
                f"{type(provider).__name__} has an api_key= but no api_key_env variable to "
                f"carry it to the Ray actors; set one on the class, or build the agent in a "
                f"function that reads the key on the cluster"
            )
        if keys.get(variable, key) != key:
            raise ConfigurationError(
                f"two agents of the batch use different api_key= values for {variable}; on "
                f"Ray a key travels as that environment variable, so use one key per provider"
            )
        keys[variable] = key
    fresh = tuple(name for name in _FRESH if name in vars(provider))
    return _rebuild_provider, (type(provider), state, fresh)


def _rebuild_provider(
    cls: type[Provider], state: dict[str, Any], fresh: tuple[str, ...]
) -> Provider:
    provider = cls.__new__(cls)
    provider.__dict__.update(state)
    provider._api_key = None  # read from the environment the actor was given
    for name in fresh:
        setattr(provider, name, _FRESH[name]())
    return provider


def _actor_bus(default: bool) -> EventBus:
    """The actor's own bus for a shipped one: its default bus, or a child of it (events
    reach the default bus either way, and from there the driver)."""
    return EventBus.default() if default else EventBus(parent=EventBus.default())


def provider_environment() -> dict[str, str]:
    """The driver's provider variables (keys, base URLs) and victor's defaults that are set."""
    names = set(VICTOR_ENV)
    classes: set[type[Provider]] = set()
    for name in available_providers():
        try:
            classes.add(get_provider_class(name))
        except Exception:  # noqa: BLE001 - a provider that cannot load has nothing to send
            continue
    stack = [Provider]
    while stack:
        for subclass in stack.pop().__subclasses__():
            classes.add(subclass)
            stack.append(subclass)
    for cls in classes:
        names.update(n for n in (cls.api_key_env, cls.base_url_env) if n)
    return {name: os.environ[name] for name in sorted(names) if os.environ.get(name)}
