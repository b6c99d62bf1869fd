"""When a failed model request is sent again, and after how long: one rule for every provider.

Each provider maps its library's errors to ``ProviderError`` (``retryable``, ``retry_after``);
``Provider.chat``/``stream`` then retry with ``retry_delay``, logging each retry as one
short line (``retry_reason``): the error itself is raised once, when the retries are spent.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

__all__ = ["retry_after", "retry_delay", "retry_reason", "retryable_status"]

#: Statuses below 500 that are worth another try: timeout, conflict, rate limit.
_RETRYABLE_BELOW_500 = frozenset({408, 409, 429})


def retryable_status(status: int) -> bool:
    """Whether a request refused with HTTP ``status`` may succeed when sent again: a timeout,
    a conflict, a rate limit or a server error (5xx)."""
    return status >= 500 or status in _RETRYABLE_BELOW_500


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks to wait before a retry; None if it does not say.

    ``retry-after-ms`` (Anthropic's and OpenAI's finer hint, which their SDKs prefer too)
    wins over ``retry-after`` in delta-seconds. The HTTP-date form is ignored: these APIs
    do not send it.
    """
    ms = _seconds(headers.get("retry-after-ms"))
    if ms is not None:
        return ms / 1000
    return _seconds(headers.get("retry-after"))


def retry_delay(attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): the server's hint, else
    exponential backoff from 0.5 s, capped at 20 s, with jitter so clients spread out."""
    if retry_after is not None:
        return max(0.0, min(retry_after, 60.0))
    return min(20.0, 0.5 * 2**attempt) * (0.5 + random.random() / 2)


def retry_reason(error: BaseException, cause: BaseException | None = None) -> str:
    """A few words on why a request failed, for a one-line retry notice: ``HTTP 503``,
    ``connection refused``, ``timeout``, ... ``cause`` is the library's exception that
    ``error`` was made from; its chain tells a refused connection from a slow server."""
    status = getattr(error, "status", None)
    if status is not None:
        return f"HTTP {status}"
    chain = []
    seen = cause or error
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    names = {type(e).__name__ for e in chain}
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "connection refused"
    if any("Timeout" in name for name in names):
        return "timeout"
    if "ConnectError" in names:
        return "no connection"
    if names & {"RemoteProtocolError", "ReadError", "WriteError"}:
        return "connection dropped"
    # Otherwise the message's first clause: "Ollama failed while answering", ...
    text = str(error.args[0]) if error.args else type(error).__name__
    return text.split(":")[0].split(" (")[0][:60]


def _seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return None
