"""What the notebook toolset costs on big data: inspect time and description size.

A 10-million-row, 20-column DataFrame, a 1,000-variable namespace and a 100 MB string,
each described in both context modes (schema, values) by the functions the tools call.

    python bench/notebook_context.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pandas as pd

from victor.notebook.workspace.describe import describe, list_rows


def timed(fn, repeat: int = 5) -> tuple[float, str]:
    """The median milliseconds of ``fn()`` over ``repeat`` runs, and its last result."""
    times, result = [], ""
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def main() -> None:
    rng = np.random.default_rng(0)
    rows = 10_000_000
    columns = {f"x{i}": rng.random(rows) for i in range(18)}
    columns["n"] = rng.integers(0, 100, rows)
    columns["label"] = pd.Categorical(rng.choice(["a", "b", "c"], rows))
    frame = pd.DataFrame(columns)
    namespace = {f"v{i}": (list(range(i % 50)) if i % 3 else f"text {i}") for i in range(1000)}
    namespace["frame"] = frame
    text = "x" * 100_000_000
    budget = 1500 * 4

    print(f"{'what':<42}{'mode':<8}{'ms':>9}{'chars':>8}")
    for what, fn in [
        ("describe 10M x 20 DataFrame", lambda mode: describe(frame, "frame", mode, budget)),
        ("describe 100 MB string", lambda mode: describe(text, "text", mode, budget)),
    ]:
        for mode in ("schema", "values"):
            ms, out = timed(lambda: fn(mode))  # noqa: B023 - called before the loop moves on
            print(f"{what:<42}{mode:<8}{ms:>9.1f}{len(out):>8}")
    ms, out = timed(lambda: list_rows(namespace))
    print(f"{'list 1,000 vars + DataFrame (bounded)':<42}{'both':<8}{ms:>9.1f}{len(out):>8}")
    ms, out = timed(lambda: list_rows(namespace, max_chars=10**9))
    print(f"{'... every one of them (no bound)':<42}{'both':<8}{ms:>9.1f}{len(out):>8}")
    started = time.perf_counter()
    frame.isna().sum()
    full = (time.perf_counter() - started) * 1000
    print(f"(for comparison: isna().sum() over all 10M rows takes {full:.0f} ms)")


if __name__ == "__main__":
    main()
