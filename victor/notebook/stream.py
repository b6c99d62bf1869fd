"""StreamView: an agent's answer streaming into a notebook cell (or a terminal), tool calls
shown as collapsible cards in order with the text.

In a notebook the view is one ``display(..., display_id=True)`` output updated in place at
most ~10 times a second, however fast tokens arrive, and always ended by one complete
render (Markdown, usage footer). Plain display updates need no JavaScript, so the same
output works in JupyterLab, Notebook 7, VS Code, Colab and headless nbclient, and the saved
notebook holds the final text. In a terminal the view prints text as it arrives.

    view = StreamView()
    answer = await view.run(agent, "Explain recursion")      # or agent.run(..., display=True)

``VICTOR_STREAM=0`` (or ``live=False``) renders once, at the end. The pieces a view is
drawn with (tool-call cards, code and JSON answers) are in stream_render.py; the throttled
display it updates is display.py's.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import sys
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import aclosing
from time import perf_counter
from typing import TYPE_CHECKING, Any, Literal

from .._sync import call_in_main
from ..core.messages import (
    ResponseComplete,
    RunFinished,
    StreamEvent,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    Usage,
)
from ..errors import ConfigurationError, VictorError
from .display import UPDATE_INTERVAL, LiveOutput, Throttle, detect_target
from .stream_attach import Attachment
from .stream_render import (
    Card,
    TextPart,
    card_line,
    card_markdown,
    extract_code,
    fence,
    growing_json,
    one_paragraph,
    parse_json_answer,
)

if TYPE_CHECKING:
    from ..core.agent import Agent
    from ..tools.registry import ToolLike

__all__ = ["StreamView", "Format", "FORMATS", "extract_code", "parse_json_answer"]

Format = Literal["markdown", "text", "code", "json"]
FORMATS: tuple[str, ...] = ("markdown", "text", "code", "json")

_CURSOR = " ▍"


class StreamView:
    """Live output of one agent run; also a static ``_repr_mimebundle_`` of its state.

    ``format`` shapes the final render: ``markdown`` (default), ``text`` (plain),
    ``code`` (the answer's code block, highlighted) or ``json`` (the answer parsed and
    pretty-printed; while it streams, the JSON written so far, completed and indented, so
    the object grows in place; a typed run's final render is its validated object).
    ``live`` defaults to ``$VICTOR_STREAM`` (on unless ``0``); ``target`` is
    ``"display"`` (a notebook front end) or ``"print"`` (a terminal), detected if None.
    """

    def __init__(
        self,
        *,
        format: Format = "markdown",
        live: bool | None = None,
        target: Literal["display", "print"] | None = None,
        interval: float = UPDATE_INTERVAL,
    ) -> None:
        if format not in FORMATS:
            raise ConfigurationError(
                f"format={format!r} is unknown: use one of {', '.join(FORMATS)}"
            )
        if target not in (None, "display", "print"):
            raise ConfigurationError(f"target={target!r} is unknown: use 'display' or 'print'")
        self.format = format
        self.live = _stream_setting() if live is None else live
        self.target = target or detect_target()
        self.interval = interval
        self.segments: list[TextPart | Card] = []
        self.status: Literal["idle", "running", "done", "error", "interrupted"] = "idle"
        self.error: str | None = None
        self.finished: RunFinished | None = None
        self._started = 0.0
        self._elapsed = 0.0
        self._output = LiveOutput()
        self._throttle = Throttle(self._push, interval)
        self._printed = 0  # characters of text already printed (print target)
        self._response_ended = False  # the next text starts a new segment (a new response)

    # -- driving the view ------------------------------------------------------------

    async def run(
        self,
        agent: Agent,
        task: str,
        context: Mapping[str, Any] | None = None,
        tools: Iterable[ToolLike] | None = None,
        *,
        remember: bool = False,
        output_type: Any = None,
        output_retries: int | None = None,
    ) -> Any:
        """Run ``agent`` on ``task`` showing it live; return the final answer (the validated
        object with an ``output_type``, as ``agent.run`` does)."""
        events = agent.events(
            task,
            context,
            tools,
            remember=remember,
            output_type=output_type,
            output_retries=output_retries,
        )
        finished = await self.consume(events)
        chosen = agent.output_type if output_type is None else output_type
        return finished.content if chosen in (None, str) else finished.output

    async def consume(self, events: AsyncIterator[StreamEvent]) -> RunFinished:
        """Show a run from its ``agent.events(...)`` stream; return its ``RunFinished``.

        An error is rendered, then raised; a cancelled run is marked interrupted and its
        stream closed before the cancellation propagates.
        """
        self._begin()
        finished: RunFinished | None = None
        try:
            async with aclosing(events) as stream:
                async for event in stream:
                    kind = type(event)
                    if kind is TextDelta:
                        self._text(event.text)
                    elif kind is ToolCallStarted:
                        self._tool_started(event.call.id, event.call.name, event.call.arguments)
                    elif kind is ToolCallFinished:
                        result = event.result
                        output = result.to_text() if result.success else (result.error or "failed")
                        self._tool_finished(
                            event.call.id,
                            event.call.name,
                            event.call.arguments,
                            result.success,
                            output,
                            event.duration_ms,
                        )
                    elif kind is ResponseComplete:
                        self._response_ended = True
                    elif kind is RunFinished:
                        finished = event
        except (asyncio.CancelledError, KeyboardInterrupt):
            self._fail("interrupted", interrupted=True)
            raise
        except BaseException as exc:
            self._fail(f"{type(exc).__name__}: {exc}")
            raise
        if finished is None:
            self._fail("the run ended without a final answer")
            raise VictorError("the run ended without a final answer (no RunFinished event)")
        self._finish(finished)
        return finished

    @classmethod
    def attach(cls, agent: Agent, **options: Any) -> Attachment:
        """Show every run of ``agent`` from now on (whatever starts it) until ``detach()``.

        Fed by the agent's event bus: streamed runs (``astream``, ``events``) show text as
        it arrives; ``run``/``chat`` show the answer when it is complete.
        """
        return Attachment(cls, agent, options)

    # -- what a front end shows --------------------------------------------------------

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """The view as it stands: Markdown (cards as ``<details>``) and plain text."""
        return self._bundle(final=self.status not in ("idle", "running"))

    def __repr__(self) -> str:
        return (
            f"StreamView(status={self.status!r}, text={len(self.text)} chars, "
            f"tools={len(self.cards)})"
        )

    @property
    def updates_sent(self) -> int:
        """Display messages sent: the first display plus every update (for tests, benchmarks)."""
        return self._output.updates_sent

    @property
    def text(self) -> str:
        """All answer text so far, across tool turns."""
        return "".join(str(s) for s in self.segments if isinstance(s, TextPart))

    @property
    def cards(self) -> list[Card]:
        return [s for s in self.segments if isinstance(s, Card)]

    # -- state changes (on the thread running the agent) ------------------------------

    def _begin(self) -> None:
        self.segments, self.status, self.error, self.finished = [], "running", None, None
        self._output, self._printed = LiveOutput(), 0  # a view used again shows its new run anew
        self._started = perf_counter()
        if self.live and self.target == "display":
            # The first display comes one interval in (thinking… or the text so far).
            self._throttle = Throttle(self._push, self.interval)
            self._throttle.start()

    def _text(self, delta: str) -> None:
        last = self.segments[-1] if self.segments else None
        if type(last) is TextPart and not self._response_ended:
            last.parts.append(delta)
        else:
            # After a response ended (tools ran, or a typed answer is retried), new text is
            # a new segment: a retried JSON answer is not glued to the invalid one.
            self._response_ended = False
            self.segments.append(TextPart([delta]))
        if self.live:
            if self.target == "print":
                self._print_new_text()
            else:
                self._changed()

    def _tool_started(self, key: str, name: str, arguments: dict[str, Any]) -> None:
        self.segments.append(Card(key, name, dict(arguments)))
        if self.live:
            self._changed()

    def _tool_finished(
        self,
        key: str,
        name: str,
        arguments: dict[str, Any],
        ok: bool,
        output: str,
        duration_ms: float,
    ) -> None:
        card = next((c for c in self.cards if c.key == key), None)
        if card is None:  # no start seen (events from the bus): the card appears finished
            card = Card(key, name, dict(arguments))
            self.segments.append(card)
        card.state, card.output, card.duration_ms = ("ok" if ok else "error"), output, duration_ms
        if self.live:
            if self.target == "print":
                self._print_new_text()
                line = f"\n{card_line(card)}\n"
                call_in_main(lambda: _write(line))
            else:
                self._changed()

    def _finish(self, finished: RunFinished) -> None:
        self.finished, self.status = finished, "done"
        if finished.content and not self.text.endswith(finished.content):
            last = self.segments[-1] if self.segments else None
            if finished.output is not None and type(last) is TextPart:
                # A typed answer may stream in a slightly different form (the local model
                # holds back closing braces): show the answer as it was validated.
                last.parts = [finished.content]
            else:
                # A run that did not stream (seen through the bus) brings its answer only here.
                self.segments.append(TextPart([finished.content]))
        self._final()

    def _fail(self, message: str, *, interrupted: bool = False) -> None:
        self.status, self.error = ("interrupted" if interrupted else "error"), message
        self._final()

    # -- output ------------------------------------------------------------------------

    def _changed(self) -> None:
        if self.target == "display":
            self._throttle.poke()

    def _push(self) -> None:
        self._output.post(self._bundle(final=False))

    def _final(self) -> None:
        self._throttle.cancel()
        self._elapsed = perf_counter() - self._started
        if self.target == "print":
            self._print_final()
        else:
            self._output.post(self._bundle(final=True))

    def _print_new_text(self) -> None:
        text = self.text
        new, self._printed = text[self._printed :], len(text)
        if new:
            call_in_main(lambda: _write(new))

    def _print_final(self) -> None:
        lines = []
        if not self.live:
            lines.append(self._plain(final=True))
        else:
            self._print_new_text()
            lines.append("")
            if self.status == "done":
                lines.append(self._footer())
            else:
                lines.append(f"[{self.status}: {self.error}]")
        out = "\n".join(lines) + "\n"
        call_in_main(lambda: _write(out))

    # -- rendering -----------------------------------------------------------------------

    def _bundle(self, *, final: bool) -> dict[str, str]:
        plain = self._plain(final=final)
        if self.format == "text":
            return {"text/plain": plain}
        return {"text/markdown": self._markdown(final=final), "text/plain": plain}

    def _answer_segments(self, final: bool) -> list[TextPart | Card]:
        """Segments to show; finished code/json answers are reshaped, and a json answer
        is shown as the value it is becoming while it streams."""
        segments = list(self.segments)
        done = final and self.status == "done"
        if (done and self.format in ("code", "json")) or (not final and self.format == "json"):
            for index in range(len(segments) - 1, -1, -1):
                if isinstance(segments[index], TextPart):
                    text = str(segments[index])
                    shown = self._reshaped_answer(text) if done else growing_json(text)
                    segments[index] = TextPart([shown])
                    break
        return segments

    def _reshaped_answer(self, answer: str) -> str:
        if self.format == "code":
            code, language = extract_code(answer)
            return fence(code, language or "python")
        if self.finished is not None and self.finished.output is not None:
            from pydantic_core import to_jsonable_python

            value = to_jsonable_python(self.finished.output)  # the validated object
        else:
            try:
                value = parse_json_answer(answer)
            except VictorError:
                return answer  # shown as it came; the magic reports the error
        return fence(json.dumps(value, indent=2, ensure_ascii=False), "json")

    def _markdown(self, *, final: bool) -> str:
        blocks = []
        for segment in self._answer_segments(final):
            if isinstance(segment, Card):
                blocks.append(card_markdown(segment))
            elif str(segment).strip():
                blocks.append(str(segment))
        body = "\n\n".join(blocks)
        if not final:
            if self.status == "running" and not body:
                return "*thinking…*"
            return body + _CURSOR
        if self.status == "done":
            return f"{body}\n\n<sub>{html.escape(self._footer())}</sub>"
        label = "Interrupted" if self.status == "interrupted" else "Error"
        return f"{body}\n\n> **{label}:** {one_paragraph(self.error or '')}".lstrip()

    def _plain(self, *, final: bool) -> str:
        lines = []
        for segment in self._answer_segments(final):
            lines.append(card_line(segment) if isinstance(segment, Card) else str(segment))
        body = "\n".join(line for line in lines if line)
        if not final:
            return body + _CURSOR if body else "thinking…"
        if self.status == "done":
            return f"{body}\n\n{self._footer()}"
        return f"{body}\n\n[{self.status}: {self.error}]".lstrip()

    def _footer(self) -> str:
        finished = self.finished
        if finished is None:
            return f"{self._elapsed:.1f} s"
        usage: Usage = finished.usage
        where = "/".join(x for x in (finished.provider, finished.model) if x)
        tokens = f"{usage.total_tokens} tokens ({usage.input_tokens} in, {usage.output_tokens} out)"
        return f"{where} · {tokens} · {self._elapsed:.1f} s"


# -- the environment ------------------------------------------------------------------


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _stream_setting() -> bool:
    return os.environ.get("VICTOR_STREAM", "1").strip().lower() not in ("0", "false", "no", "off")
