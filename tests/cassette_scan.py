"""What a cassette file must never hold: a secret the scrubber knows (a key given in code, a
secret-named variable's value) or anything shaped like one."""

from __future__ import annotations

from pathlib import Path

from victor._secrets import scrub, secret_values


def secrets_in(path: Path) -> list[str]:
    """The lines of ``path`` that still hold a secret (empty: clean)."""
    values = secret_values()
    lines = path.read_text(encoding="utf-8").splitlines()
    return [
        f"{path}:{number}: {scrub(line, values).strip()[:120]}"
        for number, line in enumerate(lines, 1)
        if scrub(line, values) != line
    ]
