"""The one secret scrubber: what victor masks in log lines, error messages, HTTP problems
and trace spans, so that a value hidden in one of them is hidden in all.

Masked, as ``***``:

- the values of environment variables whose names say they hold a secret (``KEY``,
  ``TOKEN``, ``SECRET``, ``PASSW``, ``CREDENTIAL`` anywhere in the name; values of 8
  characters or more, so that flags such as ``1`` stay readable);
- keys given to victor in code (``remember``: a provider's ``api_key=``);
- text shaped like a credential, wherever it came from: provider keys (``sk-ant-...``,
  ``sk-proj-...``, ``hf_...``, ``ghp_...``, ``AKIA...``, ``AIza...``), ``Bearer`` and
  ``Authorization:`` credentials, ``api_key=...``-style fields (also in JSON and query
  strings), and the password in ``scheme://user:password@host``. The label stays
  (``api_key=***``), so a reader still sees what was there.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging

__all__ = ["MASK", "scrub", "secret_values", "remember", "SecretFilter", "get_logger"]

MASK = "***"

#: Searched in the upper-cased name of every environment variable.
_SECRET_NAME = r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL"
#: Shorter values are flags and switches, not secrets (and masking them would garble text).
_SHORTEST = 8
#: Keys victor was given in code, most recent last (bounded: a server may see many).
_given: dict[str, None] = {}
_MOST_GIVEN = 256

#: Credentials recognised by their shape: masked whole.
_TOKENS = (
    r"\bsk-[A-Za-z0-9][A-Za-z0-9_-]{15,}",  # Anthropic sk-ant-..., OpenAI sk-..., sk-proj-...
    # Hugging Face, GitHub, GitLab, Slack
    r"\b(?:hf|gh[pousr]|github_pat|glpat|xox[abprs])[_-][A-Za-z0-9_-]{16,}",
    r"\bAKIA[0-9A-Z]{16}\b",  # AWS access key id
    r"\bAIza[0-9A-Za-z_-]{35}",  # Google API key
)
#: Credentials recognised by their label: the label is kept, the value masked.
_LABELS = (
    r"\bBearer\s+",
    r"\bAuthorization[\"']?\s*[:=]\s*[\"']?(?:(?:Basic|Bearer|Token|Digest)\s+)?",
    # api_key=..., "api_key": "...", X-Api-Key: ..., OPENAI_API_KEY=..., ?access_token=...
    # (quotes may be escaped: JSON inside a string, as in span attributes)
    r"(?:api[_-]?key|token|secret|passw(?:or)?d|credentials?)\\?[\"']?\s*[:=]\s*\\?[\"']?",
    r"[?&](?:key|sig|signature)=",
)
#: Text without any of these (lower-cased) has nothing for the patterns above: most text
#: is let through after a few substring searches instead of a scan by the whole pattern.
_HINTS = (
    *("sk-", "hf_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat", "glpat", "xox"),
    *("akia", "aiza", "bearer", "authorization", "key", "token", "secret", "passw"),
    *("credential", "sig", "@"),  # "@": a password in a URL comes before one
)


@functools.cache
def _secret_name() -> re.Pattern[str]:
    return re.compile(_SECRET_NAME)  # at first use, as the next two: not at `import victor`


@functools.cache
def _hint() -> re.Pattern[str]:
    return re.compile("|".join(map(re.escape, _HINTS)))


@functools.cache
def _pattern() -> re.Pattern[str]:
    return re.compile(
        rf"(?P<label>{'|'.join(_LABELS)})(?P<value>[^\s\"'&,;()<>\[\]{{}}\\]{{{_SHORTEST},}})"
        rf"|(?P<url>[a-z][a-z0-9+.-]*://[^\s/:@]+:)(?P<password>[^\s/@]+)@"
        rf"|{'|'.join(_TOKENS)}",
        re.IGNORECASE,
    )


def remember(value: str | None) -> None:
    """Mask ``value`` from now on wherever victor scrubs (a key given in code, not in an
    environment variable)."""
    if value and len(value) >= _SHORTEST:
        _given.pop(value, None)
        _given[value] = None
        if len(_given) > _MOST_GIVEN:
            del _given[next(iter(_given))]


def secret_values(*also: str | None) -> tuple[str, ...]:
    """The values to mask now, longest first: of secret-named environment variables, of
    keys given in code, and ``also``. Callers that scrub a lot keep this and pass it to
    ``scrub``."""
    environ, secret = os.environ, _secret_name().search
    values = {value for name, value in environ.items() if secret(name.upper())}
    values.update(_given, (value for value in also if value))
    return tuple(sorted((v for v in values if len(v) >= _SHORTEST), key=len, reverse=True))


def scrub(text: str, values: Iterable[str] | None = None) -> str:
    """``text`` with every secret masked (``values``: from ``secret_values()``; default:
    found now)."""
    for value in secret_values() if values is None else values:
        if value in text:
            text = text.replace(value, MASK)
    if _hint().search(text.lower()):
        text = _pattern().sub(_mask, text)
    return text


def _mask(match: re.Match[str]) -> str:
    if match["label"] is not None:
        return match["label"] + MASK
    if match["url"] is not None:
        return f"{match['url']}{MASK}@"
    return MASK


class SecretFilter:
    """Scrubs a log record (message, arguments, traceback) before any handler sees it.

    A logging filter (anything with a ``filter`` method is one), not a ``logging.Filter``:
    ``import victor`` does not import ``logging``."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: the handler reports it, as without us
            return True
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            import logging

            # Rendered here, as a Formatter would, so that no handler renders it unmasked.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


_filter = SecretFilter()


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` whose records are scrubbed before they reach any
    handler (victor's, the application's, a test's)."""
    import logging

    log = logging.getLogger(name)
    if _filter not in log.filters:
        log.addFilter(_filter)
    return log
