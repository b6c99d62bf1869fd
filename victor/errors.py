"""The exception tree: every error victor raises on purpose is a ``VictorError``."""

from __future__ import annotations

from typing import Any

from ._secrets import scrub

__all__ = [
    "VictorError",
    "ProviderError",
    "ToolError",
    "ConfigurationError",
    "StateError",
    "LimitExceededError",
    "OutputValidationError",
    "CassetteError",
    "CassetteMiss",
]


class VictorError(Exception):
    """Base class of all errors raised by victor. Messages are scrubbed of secrets (keys,
    tokens: see ``victor._secrets``), also those quoting what a server or library said."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(scrub(arg) if isinstance(arg, str) else arg for arg in args))


class ConfigurationError(VictorError):
    """A setting is missing or invalid: unknown provider, bad temperature, no API key."""


class ProviderError(VictorError):
    """A model provider failed to answer: HTTP error, timeout, broken stream, bad reply.

    ``retryable`` tells whether trying again may help (429, 5xx, connection errors);
    ``retry_after`` is the server's hint in seconds, when it gave one; ``attempts`` is how
    many times the request was sent before this error was raised (retries included).
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        request_id: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.request_id = request_id
        self.retryable = retryable
        self.retry_after = retry_after
        self.attempts = attempts

    def __str__(self) -> str:
        parts = [f"[{self.provider}] {self.args[0]}"]
        if self.status is not None:
            parts.append(f"(HTTP {self.status})")
        if self.request_id:
            parts.append(f"(request id {self.request_id})")
        if self.attempts > 1:
            parts.append(f"(after {self.attempts} attempts)")
        return " ".join(parts)


class ToolError(VictorError):
    """A tool cannot be found, configured or run in a way the caller must see."""


class StateError(VictorError):
    """A state file cannot be saved or loaded: unserialisable value, missing or corrupt file."""


class LimitExceededError(VictorError):
    """A run hit one of its limits (iterations, tool calls, time) before finishing."""


class OutputValidationError(VictorError):
    """The model's answer did not match the run's ``output_type``, also after the retries.

    ``raw`` is the last answer as the model wrote it; ``errors`` is pydantic's list of
    what is wrong with it (``ValidationError.errors()``).
    """

    def __init__(self, message: str, *, raw: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.raw = raw
        self.errors = errors


class CassetteError(VictorError):
    """A cassette (``victor.testing.cassette``) cannot be read, or its recordings and the
    run did not agree: a corrupted file, recordings left unused (``fail_on_unused``)."""


class CassetteMiss(CassetteError):
    """A request a cassette has no recording for, where it may not record: it never
    reaches the network. The message shows the nearest recording and the first field
    that differs; ``request`` is the request as matched."""

    def __init__(self, message: str, *, request: dict[str, Any]) -> None:
        super().__init__(message)
        self.request = request
