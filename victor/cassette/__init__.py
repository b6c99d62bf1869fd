"""Record a model's answers once, replay them exactly: ``victor.testing.cassette``.

    from victor.testing import cassette

    with cassette("tests/cassettes/weather.json"):
        result = await agent.run("What's the weather in Paris?")

HTTP providers are recorded at their HTTP transport (the SDK parses a replay as it parses
a live answer); the embedded model at the provider boundary. Both go through the tap in
``victor.providers.tap``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar

from .._secrets import secret_values
from ..errors import CassetteError, CassetteMiss, ConfigurationError
from ..providers import tap as _tap
from ..providers.base import requests_blocked
from . import calls, http, store
from .match import Matcher, describe_miss, key

__all__ = ["Cassette", "cassette", "CassetteMiss", "CassetteWarning", "MODES", "default_mode"]

Record = Literal["once", "none", "new_episodes", "all"]
MODES: tuple[str, ...] = ("once", "none", "new_episodes", "all")
F = TypeVar("F", bound=Callable[..., Any])


def default_mode() -> Record:
    """``"none"`` in CI (``CI=true``: replay only, never a live request), else ``"once"``."""
    return "none" if os.environ.get("CI", "").lower() == "true" else "once"


class CassetteWarning(UserWarning):
    """Recordings a cassette block did not use (the run asked fewer questions)."""


class Cassette:
    """Records or replays every model exchange inside its block (see ``cassette``)."""

    def __init__(
        self,
        path: str | Path,
        record: Record = "once",
        *,
        match: Matcher | None = None,
        ignore: Iterable[str] = (),
        realtime: bool = False,
        fail_on_unused: bool = False,
    ) -> None:
        if record not in MODES:
            raise ConfigurationError(
                f"record={record!r} is not a cassette mode: use one of {', '.join(MODES)}"
            )
        self.path = Path(path)
        self.record = record
        self.match = match
        self.ignore = tuple(ignore)
        self.realtime = realtime
        self.fail_on_unused = fail_on_unused
        self._lock = threading.Lock()
        self._tokens: list[Any] = []
        self._open = False
        self.replay_only = False

    def __repr__(self) -> str:
        return f"Cassette({str(self.path)!r}, record={self.record!r})"

    # -- opening and closing ------------------------------------------------------------

    def open(self) -> Cassette:
        """Read the file (if any) and start answering from it."""
        existed = self.path.exists()
        recorded = store.load(self.path) if existed and self.record != "all" else []
        #: Recorded interactions, then those this block adds, in order.
        self.interactions: list[dict[str, Any]] = recorded
        self._loaded = len(recorded)
        self._used = [False] * len(recorded)
        self._keys = [key(i["request"], self.ignore) for i in recorded]
        self._may_record = self.record in ("all", "new_episodes") or (
            self.record == "once" and not existed
        )
        self._existed = existed
        self.replay_only = not self._may_record
        self._missed = False
        self._dirty = self.record == "all"
        self._secrets = secret_values()
        self._open = True
        return self

    def close(self, failing: bool = False) -> None:
        """Write what was recorded; report (or, with ``fail_on_unused``, fail on) the
        recordings the block did not use."""
        if not self._open:
            return
        self._open = False
        if self._dirty:  # recorded since the last save (or "all": even nothing)
            self._save()
        unused = [n for n in range(self._loaded) if not self._used[n]]
        if unused and not failing and not self._missed:  # a miss already said what differs
            listed = ", ".join(
                f"#{n + 1} {self._keys[n]['method']} {self._keys[n]['path']}" for n in unused[:5]
            )
            message = (
                f"{len(unused)} recording(s) in {self.path} were not used: {listed}"
                f"{' ...' if len(unused) > 5 else ''}. The run asked fewer questions than the "
                f'recording: re-record with record="all" if that is intended'
            )
            if self.fail_on_unused:
                raise CassetteError(message)
            warnings.warn(message, CassetteWarning, stacklevel=3)

    def describe(self) -> str:
        """One line on what the cassette does: replays how many, records or not."""
        if not self._open:
            return f"cassette {self.path} (closed)"
        replays = f"replaying {self._loaded} recording(s)" if self._loaded else ""
        records = "recording new requests" if self._may_record else "no live requests"
        what = ", ".join(part for part in (replays, records) if part)
        return f"cassette {self.path} (record={self.record!r}): {what}"

    def __enter__(self) -> Cassette:
        self.open()
        self._tokens.append(_tap.set_tap(self))
        return self

    def __exit__(self, kind: type | None, *exc: object) -> None:
        _tap.reset_tap(self._tokens.pop())
        self.close(failing=kind is not None)

    async def __aenter__(self) -> Cassette:
        return self.__enter__()

    async def __aexit__(self, kind: type | None, *exc: object) -> None:
        self.__exit__(kind, *exc)

    def start(self) -> Cassette:
        """Record or replay from now on in the whole process (a notebook's rest), until
        ``stop()``."""
        self.open()
        self._previous = _tap.set_process_tap(self)
        return self

    def stop(self, failing: bool = False) -> None:
        _tap.set_process_tap(getattr(self, "_previous", None))
        self.close(failing)

    def __call__(self, function: F) -> F:
        """As a decorator: each call of ``function`` (sync or async) runs in the cassette."""
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with self:
                    return await function(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self:
                return function(*args, **kwargs)

        return run  # type: ignore[return-value]

    # -- the tap ------------------------------------------------------------------------

    async def handle_http(self, request: Any, transport: Any) -> Any:
        live = await http.request_record(request, self._secrets)
        found = self._take(live)
        if isinstance(found, dict):
            if self.realtime and found.get("after"):
                await asyncio.sleep(found["after"])
            return http.replay(found, request, self.realtime)
        if requests_blocked(str(request.url)):
            raise CassetteError(
                f"{self.path} has no recording for {request.method} {live['path']}, and "
                f"recording it needs {request.url.host}, but real model requests are blocked "
                f"(victor.testing.block_requests): record it where requests are allowed"
            )
        return await http.record(request, transport, self._secrets, self._finisher(found))

    async def chat(self, provider: Any, arguments: tuple[Any, ...]) -> Any:
        live = calls.request_record(provider, "chat", arguments, self._secrets)
        found = self._take(live)
        if isinstance(found, dict):
            return calls.replay_response(found)
        response = await provider._chat(*arguments)
        self._finisher(found)(calls.response_record(response, self._secrets))
        return response

    async def stream(self, provider: Any, arguments: tuple[Any, ...]) -> AsyncIterator[Any]:
        live = calls.request_record(provider, "stream", arguments, self._secrets)
        found = self._take(live)
        if isinstance(found, dict):
            for stored in found.get("stream", []):
                if self.realtime and stored.get("after"):
                    await asyncio.sleep(stored["after"])
                yield calls.event(stored)
            return
        events: list[dict[str, Any]] = []
        last = time.monotonic()
        try:
            async for item in provider._stream(*arguments):
                now = time.monotonic()
                events.append(calls.event_record(item, now - last, self._secrets))
                last = now
                yield item
        finally:
            self._finisher(found)({"stream": events})

    # -- bookkeeping --------------------------------------------------------------------

    def _take(self, live: dict[str, Any]) -> dict[str, Any] | int:
        """The recorded response that answers ``live`` (the first unused match, so that
        identical requests replay in order), or the index of a new slot to record it in;
        ``CassetteMiss`` where the mode allows no recording."""
        if not self._open:
            raise CassetteError(f"the cassette {self.path} is closed: use it in a with block")
        wanted = key(live, self.ignore)
        with self._lock:
            for index in range(self._loaded):
                if not self._used[index] and self._matches(wanted, self._keys[index]):
                    self._used[index] = True
                    return self.interactions[index]["response"]
            if not self._may_record:
                self._missed = True
                raise CassetteMiss(self._miss_message(wanted), request=wanted)
            self.interactions.append({"request": live, "response": None})
            return len(self.interactions) - 1

    def _matches(self, wanted: dict[str, Any], recorded: dict[str, Any]) -> bool:
        if (wanted["method"], wanted["path"]) != (recorded["method"], recorded["path"]):
            return False
        if self.match is not None:
            return bool(self.match(wanted, recorded))
        return wanted["body"] == recorded["body"]

    def _miss_message(self, wanted: dict[str, Any]) -> str:
        if not self._existed:
            why = f"record={self.record!r} and the file does not exist yet"
        else:
            why = f"record={self.record!r} replays only"
        return describe_miss(wanted, self._keys[: self._loaded], self._used, str(self.path), why)

    def _finisher(self, index: dict[str, Any] | int) -> Callable[[dict[str, Any]], None]:
        def finish(response: dict[str, Any]) -> None:
            with self._lock:
                self.interactions[index]["response"] = response  # type: ignore[index]
                self._dirty = True
            if self._open:
                self._save()  # as it happens: a notebook's cassette is never "closed"

        return finish

    def _save(self) -> None:
        with self._lock:
            done = [i for i in self.interactions if i["response"] is not None]
            self._dirty = False
        store.save(self.path, done)


def cassette(
    path: str | Path,
    record: Record = "once",
    *,
    match: Matcher | None = None,
    ignore: Iterable[str] = (),
    realtime: bool = False,
    fail_on_unused: bool = False,
) -> Cassette:
    """Record every model exchange inside the block to ``path`` (a JSON file), or replay it.

    ``record``: ``"once"`` records if the file does not exist, else replays only;
    ``"none"`` replays only; ``"new_episodes"`` replays what it has and records the rest;
    ``"all"`` records everything anew. A request with no recording where none may be
    made raises ``CassetteMiss`` (nothing reaches the network). ``match(request,
    recorded)`` replaces the body comparison; ``ignore`` names more top-level body fields to
    leave out of it. ``realtime``: replay at the recorded pace. ``fail_on_unused``: raise
    ``CassetteError`` when recordings are left over at the end (else a warning).

    A context manager (``with``/``async with``) and a decorator.
    """
    return Cassette(
        path,
        record,
        match=match,
        ignore=ignore,
        realtime=realtime,
        fail_on_unused=fail_on_unused,
    )
