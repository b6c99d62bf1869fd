"""Test doubles that go through the real public API: scripted and function providers,
``override`` to swap every agent's provider in a block, a switch that blocks real model
requests, and ``cassette`` to record a real model's answers once and replay them.

    from victor.testing import ScriptedProvider, call

    agent = await Agent.create(provider=ScriptedProvider([call("add", a=1, b=2), "3"]))
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ._util import bound, maybe_await
from .core.messages import (
    Message,
    ResponseComplete,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
)
from .core.run import provider_override
from .errors import CassetteMiss, ProviderError
from .providers.base import AgentResponse, Provider, _set_blocked

if TYPE_CHECKING:
    from .cassette import cassette

__all__ = [
    "ScriptedProvider",
    "FunctionProvider",
    "Reply",
    "call",
    "override",
    "block_requests",
    "cassette",
    "CassetteMiss",
]

#: What a test provider may answer with: text, one tool call, several tool calls in one
#: turn, a whole ``AgentResponse``, or an exception to raise.
Reply = str | ToolCall | list[ToolCall] | AgentResponse | BaseException

_call_ids = itertools.count(1)


def call(name: str, /, **arguments: Any) -> ToolCall:
    """A tool call for a scripted reply: ``call("read_file", path="a.py")``."""
    return ToolCall(id=f"call_{next(_call_ids)}", name=name, arguments=arguments)


class _TestProvider(Provider):
    """Shared behaviour of in-process test providers: replies become responses and streams."""

    default_model = "test-model"
    in_process = True

    def __init__(self, *, chunk_delay: float = 0.0, **settings: Any) -> None:
        super().__init__(**settings)
        #: Seconds between streamed chunks, to make streaming visible in demos.
        self.chunk_delay = chunk_delay
        #: Every conversation the provider was sent, and the tools offered with it.
        self.requests: list[list[Message]] = []
        self.tools_offered: list[list[ToolSpec]] = []

    def _create_client(self) -> None:
        return None

    async def _close_client(self, client: Any) -> None:
        return None

    async def _next_reply(self, messages: list[Message], tools: list[ToolSpec]) -> Reply:
        raise NotImplementedError

    async def _respond(self, messages: list[Message], tools: list[ToolSpec]) -> AgentResponse:
        self.requests.append(list(messages))
        self.tools_offered.append(list(tools))
        reply = await self._next_reply(messages, tools)
        if isinstance(reply, BaseException):
            raise reply
        return self._to_response(reply, messages)

    def _to_response(self, reply: Reply, messages: list[Message]) -> AgentResponse:
        if isinstance(reply, AgentResponse):
            return reply
        prompt_tokens = sum(len(m.content.split()) for m in messages)
        if isinstance(reply, str):
            return AgentResponse(
                content=reply,
                usage=Usage(input_tokens=prompt_tokens, output_tokens=len(reply.split())),
                model=self.model,
                stop_reason="end",
            )
        calls = [reply] if isinstance(reply, ToolCall) else list(reply)
        if not all(isinstance(c, ToolCall) for c in calls):
            raise TypeError(
                f"unsupported scripted reply {reply!r}: use a str, call(...), a list of "
                f"calls, an AgentResponse or an exception"
            )
        return AgentResponse(
            tool_calls=calls,
            usage=Usage(input_tokens=prompt_tokens, output_tokens=len(calls) * 10),
            model=self.model,
            stop_reason="tool_calls",
        )

    async def _chat(self, messages: list[Message], tools: list[ToolSpec]) -> AgentResponse:
        return await self._respond(messages, tools)

    async def _stream(
        self, messages: list[Message], tools: list[ToolSpec]
    ) -> AsyncIterator[StreamEvent]:
        response = await self._respond(messages, tools)
        for piece in _chunks(response.content):
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            yield TextDelta(piece)
        yield ResponseComplete(response)


class ScriptedProvider(_TestProvider):
    """Answers each request with the next reply from a list; runs out with a clear error."""

    name = "scripted"

    def __init__(self, replies: Iterable[Reply], **settings: Any) -> None:
        super().__init__(**settings)
        self.replies = list(replies)
        self._position = 0

    async def _next_reply(self, messages: list[Message], tools: list[ToolSpec]) -> Reply:
        if self._position >= len(self.replies):
            raise ProviderError(
                f"ScriptedProvider ran out of replies after {len(self.replies)} request(s); "
                f"add more replies to the script",
                provider=self.name,
            )
        reply = self.replies[self._position]
        self._position += 1
        return reply

    @property
    def remaining(self) -> int:
        """Replies not used yet."""
        return len(self.replies) - self._position


class FunctionProvider(_TestProvider):
    """Lets a function (sync or async) decide each reply from the messages and tools."""

    name = "function"

    def __init__(
        self,
        fn: Callable[[list[Message], list[ToolSpec]], Reply | Awaitable[Reply]],
        **settings: Any,
    ) -> None:
        super().__init__(**settings)
        self.fn = fn

    async def _next_reply(self, messages: list[Message], tools: list[ToolSpec]) -> Reply:
        return await maybe_await(self.fn(messages, tools))


@contextmanager
def override(provider: Provider) -> Iterator[Provider]:
    """Make every agent run inside the block use ``provider`` instead of its own."""
    with bound(provider_override, provider):
        yield provider


class block_requests:
    """Refuse model requests to any host but this machine.

    Called once (e.g. in a ``conftest.py``) it blocks for the rest of the process; used as
    ``with block_requests():`` it blocks inside the block only.
    """

    def __init__(self, blocked: bool = True) -> None:
        self._previous = _set_blocked(blocked)

    def __enter__(self) -> block_requests:
        return self

    def __exit__(self, *exc: object) -> None:
        _set_blocked(self._previous)


def __getattr__(name: str) -> Any:
    # The recorder (victor.cassette) is imported when a test first asks for it.
    if name in ("cassette", "Cassette", "CassetteWarning"):
        from . import cassette as _cassette

        return getattr(_cassette, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _chunks(text: str) -> Iterator[str]:
    """Split text into word-sized pieces that concatenate back to it exactly."""
    start = 0
    for index, char in enumerate(text):
        if char == " " and index > start:
            yield text[start:index]
            start = index
    if start < len(text):
        yield text[start:]
