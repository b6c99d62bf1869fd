"""HTTP errors as RFC 9457 problem details (``application/problem+json``): a status, a
title, a detail a person can act on; never a secret (values of key and token variables are
masked wherever they might appear). Both servers answer with them, the guard in front of
them included.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["Problem", "PROBLEM_TYPE", "redact"]

PROBLEM_TYPE = "application/problem+json"

#: Environment variables whose values must never reach a client.
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)$")


class Problem(Exception):
    """An HTTP error answered as problem details."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": redact(self.detail),
            **self.extra,
        }

    def json(self) -> bytes:
        return json.dumps(self.body(), ensure_ascii=False).encode()


def redact(text: str) -> str:
    """``text`` with the value of every key/token/secret environment variable masked."""
    for name, value in os.environ.items():
        if len(value) >= 8 and value in text and _SECRET_NAME.search(name):
            text = text.replace(value, f"<{name}>")
    return text
