"""HTTP errors as RFC 9457 problem details (``application/problem+json``): a status, a
title, a detail a person can act on; never a secret (the detail is scrubbed by
``victor._secrets``, as logs, errors and spans are). Both servers answer with them, the
guard in front of them included.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .._secrets import scrub

__all__ = ["Problem", "PROBLEM_TYPE"]

PROBLEM_TYPE = "application/problem+json"


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
            "detail": scrub(self.detail),
            **self.extra,
        }

    def json(self) -> bytes:
        return json.dumps(self.body(), ensure_ascii=False).encode()
