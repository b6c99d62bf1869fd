"""The provider interface and the registry of provider names.

A provider turns ``messages.py`` types into one API's wire format and back. Subclasses
implement ``_create_client``, ``_chat``, ``_stream`` and ``_map_error``; this base class
adds what every provider shares: validated settings, one lazily created client per event
loop, retries with backoff (``retry.py``), and the switch that blocks real requests in
tests. Translation pieces several providers use are in ``translation.py``; the settings
every provider takes are declared in ``settings.py``.
"""

from __future__ import annotations

import os
import weakref
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Collection
from contextlib import aclosing
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ClassVar

from .._secrets import get_logger, remember, scrub, secret_values
from .._util import check_settings, url_is_loopback
from ..core.events import current_scope
from ..core.messages import AgentResponse, Message, OutputSchema, StreamEvent, TextDelta, ToolSpec
from ..errors import ConfigurationError, ProviderError, VictorError
from .registry import available_providers, get_provider_class, register_provider
from .retry import retry_delay, retry_reason
from .settings import PROVIDER_SETTINGS, check_options
from .tap import current_tap, tap_client

if TYPE_CHECKING:
    import asyncio

logger = get_logger("victor.providers")

__all__ = [
    "AgentResponse",
    "Provider",
    "register_provider",
    "get_provider_class",
    "available_providers",
]

#: A lower ``max_tokens`` for the requests made in this context (``with bound(...)``): a
#: team's plan or a judge's verdict is short, so a model that loops is stopped early.
max_tokens_cap: ContextVar[int | None] = ContextVar("max_tokens_cap", default=None)
#: The key an SDK client gets when none is set and a cassette only replays (CI without keys).
REPLAY_KEY = "no-key-replaying-a-cassette"


class Provider(ABC):
    """Base class of model providers. One instance serves one agent, on any event loop.

    Keyword arguments besides the settings in ``PROVIDER_SETTINGS`` are API parameters,
    sent with every request. A provider that lists them in ``api_options`` refuses any
    other name (a misspelt setting is an error, not an extra body field); anything an API
    takes that is not listed goes in ``extra_body={...}``, on purpose. ``api_options =
    None`` leaves the check to the provider itself.
    """

    name: ClassVar[str] = "provider"
    default_model: ClassVar[str] = ""
    #: The API parameters this provider passes on by name (None: it checks its own).
    api_options: ClassVar[frozenset[str] | None] = None
    #: Whether ``extra_body`` & co. mean something (not for an in-process model).
    takes_extra_body: ClassVar[bool] = True
    #: Environment variables that configure the provider, by setting name.
    api_key_env: ClassVar[str | None] = None
    base_url_env: ClassVar[str | None] = None
    default_base_url: ClassVar[str | None] = None
    #: The highest temperature the API accepts (None: no bound known here).
    max_temperature: ClassVar[float | None] = None
    #: Whether ``_chat``/``_stream`` take an ``output`` schema and ask the model for it in
    #: the API's own way. Providers without it get the schema as words in the prompt.
    native_output: ClassVar[bool] = False
    #: The name telemetry reports (``gen_ai.provider.name``); a class that sets ``name``
    #: and not this reports its ``name``.
    system: ClassVar[str] = "provider"
    #: Whether the model runs in this process (no server to reach, no network request).
    in_process: ClassVar[bool] = False
    #: Whether a recorder (``victor.cassette``) takes this provider's calls at the provider
    #: boundary: a model in this process has no HTTP exchange to record.
    tapped_calls: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in vars(cls) and "system" not in vars(cls):
            cls.system = cls.name

    def __init__(
        self,
        model: str | None = None,
        *,
        temperature: float = 0.7,
        max_tokens: int = 4096,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        **options: Any,
    ) -> None:
        check_settings(
            PROVIDER_SETTINGS,
            {
                "temperature": temperature,
                "max_tokens": max_tokens,
                "api_key": api_key,
                "base_url": base_url,
                "timeout": timeout,
                "max_retries": max_retries,
            },
        )
        _check_temperature(type(self), temperature)
        check_options(type(self), options)
        self.model = model or self.default_model
        self.temperature = float(temperature)
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.max_retries = max_retries
        #: Extra keyword arguments passed through to the API request as they are.
        self.options = options
        self._api_key = api_key
        remember(api_key)  # masked wherever victor scrubs, as keys in variables are
        self._base_url = base_url
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        self._replay_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        # Never the API key: reprs end up in logs, tracebacks and notebook outputs.
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"

    # -- settings --------------------------------------------------------------------

    @property
    def max_tokens(self) -> int:
        """The most tokens a response may have: the setting, or less where a step caps it
        (``max_tokens_cap``)."""
        cap = max_tokens_cap.get()
        return self._max_tokens if cap is None else min(cap, self._max_tokens)

    @max_tokens.setter
    def max_tokens(self, value: int) -> None:
        self._max_tokens = value

    @property
    def base_url(self) -> str | None:
        """The endpoint: ``base_url=``, else the provider's variable, else its default."""
        env = os.environ.get(self.base_url_env) if self.base_url_env else None
        return self._base_url or env or self.default_base_url

    def api_key(self) -> str:
        """The API key, from ``api_key=`` or the provider's variable; checked at first use."""
        key = self._configured_key()
        if not key and getattr(current_tap(), "replay_only", False):
            return REPLAY_KEY  # a cassette that only replays sends nothing: no key needed
        if not key:
            raise ConfigurationError(
                f"No API key for provider {self.name!r}: set the {self.api_key_env} environment "
                f"variable or pass api_key=... to Agent.create()"
            )
        return key

    def _configured_key(self) -> str | None:
        return self._api_key or (os.environ.get(self.api_key_env) if self.api_key_env else None)

    def check_tools(self, names: Collection[str], output: OutputSchema) -> None:
        """``ConfigurationError`` if tools of these ``names`` cannot be offered in a run that
        asks for ``output``. The default is Anthropic's rule, the strictest (its typed answer
        is a call to a tool of the output's name), so that a run set up with one provider
        works with any other."""
        if output.name in names:
            raise ConfigurationError(
                f"the output type's name {output.name!r} is also the name of a tool: rename one"
            )

    def redact(self, value: object) -> str:
        """``str(value)`` without the API key or any other secret, for messages built from
        what a server or a library said (some echo the key back)."""
        key = self._api_key or (os.environ.get(self.api_key_env) if self.api_key_env else None)
        return scrub(str(value), secret_values(key))

    # -- the public calls ------------------------------------------------------------

    async def chat(
        self,
        messages: list[Message],
        tools: list[ToolSpec] | None = None,
        output: OutputSchema | None = None,
    ) -> AgentResponse:
        """Send the conversation and return the whole response.

        ``output``: the answer must be a JSON object matching this schema (tool calls may
        come first); the response's ``content`` is then that JSON text.
        """
        arguments = self._arguments(messages, tools, output)
        attempt = 0
        while True:
            try:
                self._guard()
                tap = current_tap() if self.tapped_calls else None
                if tap is not None:
                    return await tap.chat(self, arguments)
                return await self._chat(*arguments)
            except Exception as exc:
                error = self._to_provider_error(exc)
                if await self._should_retry(error, attempt, exc):
                    attempt += 1
                    continue
                _count_attempts(error, attempt)
                if error is exc:
                    raise
                raise error from exc

    async def stream(
        self,
        messages: list[Message],
        tools: list[ToolSpec] | None = None,
        output: OutputSchema | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Yield ``TextDelta``s as they arrive, then one ``ResponseComplete``.

        Failures before any text reached the caller are retried; after that they are
        raised, since the caller has already shown part of an answer. With ``output`` the
        deltas are the answer's JSON text as it is written.
        """
        arguments = self._arguments(messages, tools, output)
        attempt = 0
        while True:
            delivered = False
            try:
                self._guard()
                tap = current_tap() if self.tapped_calls else None
                source = self._stream(*arguments) if tap is None else tap.stream(self, arguments)
                # aclosing: an abandoned or cancelled stream closes its HTTP response now,
                # not whenever the inner generator happens to be finalised.
                async with aclosing(source) as events:
                    async for event in events:
                        if type(event) is TextDelta:
                            delivered = True
                        yield event
                return
            except Exception as exc:
                error = self._to_provider_error(exc)
                if not delivered and await self._should_retry(error, attempt, exc):
                    attempt += 1
                    continue
                _count_attempts(error, attempt)
                if error is exc:
                    raise
                raise error from exc

    async def close(self) -> None:
        """Close the HTTP clients this provider opened (``Agent.cleanup`` calls this)."""
        import asyncio  # imported when used: see victor/__init__.py

        clients = [*self._clients.items(), *self._replay_clients.items()]
        self._clients, self._replay_clients = (
            weakref.WeakKeyDictionary(),
            weakref.WeakKeyDictionary(),
        )
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, client in clients:
            if loop is current:
                await self._close_client(client)
            elif loop.is_running() and not loop.is_closed():
                future = asyncio.run_coroutine_threadsafe(self._close_client(client), loop)
                await asyncio.wrap_future(future)
            # A client of a closed loop has nothing left to close.

    def _arguments(
        self, messages: list[Message], tools: list[ToolSpec] | None, output: OutputSchema | None
    ) -> tuple[Any, ...]:
        """What ``_chat``/``_stream`` are called with; ``output`` only if they take it."""
        if output is None:
            return messages, tools or []
        if self.native_output:
            return messages, tools or [], output
        from ..core.output import prompted  # imported when used: a typed run needs it

        return prompted(messages, output), tools or []

    # -- what subclasses implement ---------------------------------------------------

    @abstractmethod
    def _create_client(self) -> Any:
        """Make a client for the running event loop."""

    async def _close_client(self, client: Any) -> None:
        await client.close()

    # A provider with ``native_output`` takes a third argument, ``output: OutputSchema``.
    @abstractmethod
    async def _chat(self, messages: list[Message], tools: list[ToolSpec]) -> AgentResponse: ...

    @abstractmethod
    def _stream(
        self, messages: list[Message], tools: list[ToolSpec]
    ) -> AsyncIterator[StreamEvent]: ...

    def _http_client(self, client: Any) -> Any:
        """The httpx (or httpx2) ``AsyncClient`` inside ``client``, whose transports a tap
        wraps so that a recorder sees the exchange (None: the provider makes no HTTP)."""
        return None

    def _map_error(self, exc: Exception) -> ProviderError | None:
        """Translate this provider's library errors into ``ProviderError`` (None: not ours)."""
        return None

    # -- shared machinery ------------------------------------------------------------

    def client(self) -> Any:
        """The client for the running loop, created on first use."""
        import asyncio  # imported when used: see victor/__init__.py

        loop = asyncio.get_running_loop()
        clients = self._clients
        if (
            self.api_key_env
            and getattr(current_tap(), "replay_only", False)
            and not self._configured_key()
        ):
            # Made with the replay's placeholder key: kept apart, so that a live request
            # after the replay makes its own client (and says the key is missing).
            clients = self._replay_clients
        client = clients.get(loop)
        if client is None:
            client = clients[loop] = self._create_client()
            http_client = self._http_client(client)
            if http_client is not None:
                tap_client(http_client)
        return client

    def _guard(self) -> None:
        # Under a tap (a cassette) that sees this provider's requests, a request may be
        # answered from a recording: the tap asks ``requests_blocked`` before it sends one.
        tapped = self.tapped_calls or type(self)._http_client is not Provider._http_client
        if requests_blocked(self.base_url) and not (tapped and current_tap() is not None):
            raise ProviderError(
                f"real model requests are blocked (victor.testing.block_requests); "
                f"{self.base_url} is not on this machine. Use a victor.testing provider or a "
                f"loopback server",
                provider=self.name,
            )

    def _to_provider_error(self, exc: Exception) -> Exception:
        if isinstance(exc, VictorError):
            return exc
        if isinstance(exc.__cause__, VictorError):
            # Raised on purpose under the SDK (a cassette's miss), which wrapped it as a
            # connection error: the caller gets ours, not "could not reach".
            error, exc.__cause__ = exc.__cause__, None
            return error
        mapped = self._map_error(exc)
        if mapped is None:
            return exc
        # The SDK's error stays chained to ours (tracebacks print it): scrub it too.
        exc.args = tuple(self.redact(a) if isinstance(a, str) else a for a in exc.args)
        if isinstance(vars(exc).get("message"), str):  # the SDKs' own copy of the text
            exc.message = self.redact(exc.message)  # type: ignore[attr-defined]
        return mapped

    async def _should_retry(self, error: Exception, attempt: int, cause: Exception) -> bool:
        retrying = (
            isinstance(error, ProviderError) and error.retryable and attempt < self.max_retries
        )
        await current_scope().emit(
            "provider.error",
            {
                "provider": self.name,
                "model": self.model,
                "error": str(error),
                "error_type": type(error).__name__,
                "status": getattr(error, "status", None),
                "retrying": retrying,
            },
        )
        if retrying:
            delay = retry_delay(attempt, getattr(error, "retry_after", None))
            # One short line: the error itself is raised once, when the retries are spent
            # (and is in the provider.error event). "notice": the CLI's progress lines.
            logger.warning(
                "retrying %s (%d/%d) in %.1f s after %s",
                self.name,
                attempt + 1,
                self.max_retries,
                delay,
                retry_reason(error, cause),
                extra={"notice": True},
            )
            from asyncio import sleep  # imported when used: see victor/__init__.py

            await sleep(delay)
        return retrying


def _check_temperature(cls: type[Provider], temperature: float) -> None:
    """``ConfigurationError`` if ``temperature`` is above what ``cls``'s API accepts."""
    most = cls.max_temperature
    if most is not None and temperature > most:
        raise ConfigurationError(
            f"temperature={temperature!r} is invalid: {cls.name} takes 0.0 to {most}"
        )


def _count_attempts(error: Exception, retries: int) -> None:
    """Record on the error that is about to be raised how many times the request was sent."""
    if retries and isinstance(error, ProviderError):
        error.attempts = retries + 1


# -- blocking real requests (victor.testing flips this) ---------------------------------

_blocked = False


def requests_blocked(url: str | None) -> bool:
    """Whether ``block_requests`` refuses a request to ``url`` now."""
    return _blocked and not (url is None or url_is_loopback(url))


def _set_blocked(value: bool) -> bool:
    global _blocked
    previous, _blocked = _blocked, value
    return previous
