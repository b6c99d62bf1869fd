"""Running GGUF models in this process for the local provider: one loaded model per (file,
load settings), shared by every provider using it and unloaded when the last lets go, and
generation in a worker thread that hands text to the event loop as it comes.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..._secrets import get_logger
from ..._util import needs_extra
from ...errors import ConfigurationError
from .build import install_command
from .guard import check_first_use, guard_active, llama_class

__all__ = ["LLAMA_CPP", "Generation", "SharedModel", "acquire", "loaded_models", "release"]

logger = get_logger("victor.providers.local")

#: The package that runs the model (module llama_cpp).
LLAMA_CPP = "llama-cpp-python"


@dataclass(eq=False)
class Generation:
    """One request run by llama.cpp in a worker thread, sending text through ``deliver``."""

    shared: SharedModel
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


@dataclass(eq=False)
class SharedModel:
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
        # Not sorted: the model writes the properties in the grammar's order, which must be
        # the schema's (an id before what depends on it, a reason before a grade).
        key = json.dumps(schema)
        grammar = self._grammars.get(key)
        if grammar is None:
            from llama_cpp import LlamaGrammar

            grammar = self._grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
        return grammar


_models: dict[tuple[Any, ...], SharedModel] = {}
_models_lock = threading.Lock()


def acquire(path: Path, load: dict[str, Any]) -> SharedModel:
    key = (str(path.resolve()), tuple(sorted(load.items())))
    with _models_lock:  # held while loading, so two first users load one copy
        shared = _models.get(key)
        if shared is None:
            shared = _models[key] = _load(key, path, load)
        shared.users += 1
        return shared


def release(shared: SharedModel) -> None:
    with _models_lock:
        shared.users -= 1
        if shared.users > 0 or _models.get(shared.key) is not shared:
            return
        del _models[shared.key]
    with shared.lock:  # let a running generation finish before freeing its memory
        shared.llama.close()


def _load(key: tuple[Any, ...], path: Path, load: dict[str, Any]) -> SharedModel:
    with needs_extra("local", "provider='local'", what=LLAMA_CPP, install=install_command):
        import llama_cpp  # noqa: F401
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
    return SharedModel(key=key, path=path, llama=llama, chat_template=template)


def loaded_models() -> dict[str, int]:
    """The models loaded in this process: file path -> number of providers using it."""
    with _models_lock:
        counts: dict[str, int] = {}
        for shared in _models.values():
            counts[str(shared.path)] = counts.get(str(shared.path), 0) + shared.users
        return counts
