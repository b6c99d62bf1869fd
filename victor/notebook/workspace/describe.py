"""What the notebook toolset says about a kernel's variables, in a context mode.

``schema`` says what a value is (type, shape, column names and dtypes) and nothing of what
it holds; ``values`` adds samples, summaries and reprs. Nothing here copies big data: a
DataFrame's rows and summaries come from its head, sizes from ``nbytes`` or
``sys.getsizeof``, never a deep scan. Reprs run in a worker thread with a time limit, so
an object whose ``__repr__`` hangs costs a second, not the kernel.
"""

from __future__ import annotations

import inspect
import sys
import threading
import types
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["bounded", "describe", "list_rows", "shape_of", "size_of", "user_names"]

#: Rows a DataFrame's null counts and numeric summaries are computed on: every n-th row
#: (a spread, not the head, which sorted data would skew). On 10M x 20 a full
#: ``isna().sum()`` takes 1-2.5 s; the sample's few ms (bench/notebook_context.py).
SAMPLE_ROWS = 20_000
#: Seconds a ``__repr__`` may take.
REPR_SECONDS = 1.0
#: IPython's own names in the user namespace (besides ``shell.user_ns_hidden``).
_IPYTHON_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython", "open"})


def bounded(fn: Callable[[], Any], seconds: float = REPR_SECONDS, what: str = "repr") -> Any:
    """``fn()`` in a daemon thread, waited for ``seconds``; on timeout a ``TimeoutError``
    saying so (the thread is left to finish: Python cannot stop it, but the kernel goes on)."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # reported to the caller, whatever it is
            box["error"] = exc

    worker = threading.Thread(target=work, name="victor-describe", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise TimeoutError(f"{what} timed out after {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def safe_repr(value: Any, limit: int) -> str:
    """``repr(value)`` cut to ``limit`` characters; a repr that raises or hangs is reported."""
    try:
        text = bounded(lambda: repr(value))
    except TimeoutError as exc:
        return f"<{_type_name(value)}: {exc}>"
    except Exception as exc:
        return f"<{_type_name(value)}: repr raised {type(exc).__name__}: {str(exc)[:200]}>"
    return _cut(text, limit)


def user_names(namespace: Mapping[str, Any], hidden: Mapping[str, Any] | None = None) -> list[str]:
    """The user's names: not ``_``-names, modules, or IPython's own (``hidden``: the
    shell's ``user_ns_hidden``, the names it put there itself)."""
    hidden = hidden or {}
    return sorted(
        name
        for name, value in list(namespace.items())
        if not name.startswith("_")
        and name not in _IPYTHON_NAMES
        and not (name in hidden and hidden[name] is value)
        and not isinstance(value, types.ModuleType)
    )


def shape_of(value: Any) -> str:
    """``shape (r, c)``, ``length n`` or "" (never computed by iterating)."""
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and all(isinstance(n, int) for n in shape):
        return "shape " + "x".join(map(str, shape)) if shape else "scalar"
    if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset, range)):
        return f"length {len(value)}"
    return ""


def size_of(value: Any) -> int:
    """Bytes, cheaply: ``nbytes``, a DataFrame's shallow ``memory_usage``, else getsizeof."""
    try:
        if _is_pandas(value) and hasattr(value, "memory_usage"):
            used = value.memory_usage(deep=False, index=True)
            return int(used.sum()) if hasattr(used, "sum") else int(used)
        if _is_polars(value) and hasattr(value, "estimated_size"):
            return int(value.estimated_size())
        nbytes = getattr(value, "nbytes", None)
        if isinstance(nbytes, int):
            return nbytes
        return sys.getsizeof(value)
    except Exception:  # an odd object's size is not worth failing the listing for
        return 0


def list_rows(
    namespace: Mapping[str, Any], hidden: Mapping[str, Any] | None = None, max_chars: int = 8000
) -> str:
    """One line per user variable: name, type, shape or length, size (at most ``max_chars``:
    then how many more there are)."""
    lines: list[str] = []
    names = user_names(namespace, hidden)
    used = 0
    for index, name in enumerate(names):
        if used > max_chars:
            lines.append(f"... and {len(names) - index} more (inspect_variable takes any name)")
            break
        value = namespace[name]
        shape = shape_of(value)
        lines.append(
            f"{name}: {_type_name(value)}"
            + (f", {shape}" if shape else "")
            + f", {_bytes(size_of(value))}"
        )
        used += len(lines[-1]) + 1
    return "\n".join(lines) if lines else "(no user variables yet)"


def describe(value: Any, name: str, mode: str, max_chars: int) -> str:
    """A compact description of ``value`` in ``mode`` ("schema" or "values"), at most
    ``max_chars`` characters."""
    values = mode == "values"
    head = f"{name}: {_type_name(value)}"
    shape = shape_of(value)
    if _is_pandas(value) and hasattr(value, "dtypes"):
        body = _pandas(value, values)
    elif _is_polars(value) and hasattr(value, "schema"):
        body = _polars(value, values)
    elif _is_numpy_array(value):
        body = _array(value, values)
    elif inspect.isroutine(value) or inspect.isclass(value):
        body = _code(value)
    elif isinstance(value, (str, bytes)):
        body = [f"length {len(value)}"]
        if values:
            body.append("value: " + safe_repr(value[: max_chars // 2], max_chars // 2))
    elif isinstance(value, (list, tuple, set, frozenset, dict)):
        body = _container(value, values)
    else:
        body = [shape] if shape else []
        if values:
            body.append("repr: " + safe_repr(value, max_chars // 2))
    if not values:
        body.append("(schema mode: no values; context='values' would show them)")
    text = "\n".join([head, *body])
    return _cut(text, max_chars)


# -- kinds ----------------------------------------------------------------------------


def _pandas(value: Any, values: bool) -> list[str]:
    lines = [f"shape {'x'.join(map(str, value.shape))}, {_bytes(size_of(value))} (shallow)"]
    frame = hasattr(value, "columns")
    dtypes = value.dtypes if frame else {value.name: value.dtype}
    lines.append("columns (dtype):" if frame else "name (dtype):")
    lines += [f"  {col!s}: {dtype}" for col, dtype in list(dtypes.items())[:200]]
    if len(dtypes) > 200:
        lines.append(f"  ... and {len(dtypes) - 200} more columns")
    if not values:
        return lines
    step = max(1, -(-len(value) // SAMPLE_ROWS))  # ceiling: at most SAMPLE_ROWS rows
    sample = value.iloc[::step].copy()  # ~3 MB; contiguous, so the reductions are fast
    over = f" (every {step:,}th row: {len(sample):,} rows)" if step > 1 else ""
    nulls = sample.isna().sum()
    nulls = nulls[nulls > 0] if frame else nulls
    if frame:
        lines.append(f"nulls{over}: " + (", ".join(f"{c}={n}" for c, n in nulls.items()) or "none"))
    else:
        lines.append(f"nulls{over}: {int(nulls)}")
    numeric = sample.select_dtypes("number") if frame else sample
    if frame or str(sample.dtype) != "object":
        try:
            summary = numeric.agg(["mean", "min", "max"])  # no quantiles: they sort
            lines.append(f"summary{over}:\n{summary.to_string(max_cols=20)}")
        except Exception:  # not numeric, empty: the rows below still say something
            pass
    rows = value.head(5)
    text = bounded(
        lambda: rows.to_string(max_cols=20, max_colwidth=40) if frame else rows.to_string(),
        what="rendering rows",
    )
    lines.append(f"first rows:\n{text}")
    return lines


def _polars(value: Any, values: bool) -> list[str]:
    lines = [f"shape {'x'.join(map(str, value.shape))}"]
    lines += [f"  {col}: {dtype}" for col, dtype in list(value.schema.items())[:200]]
    if values:
        step = max(1, -(-len(value) // SAMPLE_ROWS))
        sample = value.gather_every(step)
        lines.append(f"nulls (every {step:,}th row): {sample.null_count().row(0)}")
        lines.append(f"first rows:\n{value.head(5)}")
    return lines


def _array(value: Any, values: bool) -> list[str]:
    lines = [f"shape {value.shape}, dtype {value.dtype}, {_bytes(value.nbytes)}"]
    if values and value.size:
        step = max(1, -(-value.size // SAMPLE_ROWS))
        flat = value.reshape(-1)[::step]  # a view when the array is contiguous
        over = f" (every {step:,}th item)" if step > 1 else ""
        if value.dtype.kind in "biuf":
            lines.append(f"min {flat.min()}, max {flat.max()}, mean {flat.mean():.6g}{over}")
        lines.append("first items: " + safe_repr(value.reshape(-1)[:10].tolist(), 400))
    return lines


def _container(value: Any, values: bool) -> list[str]:
    items = list(value.items())[:5] if isinstance(value, dict) else _first(value, 5)
    if isinstance(value, dict):
        kinds = sorted({f"{_type_name(k)} -> {_type_name(v)}" for k, v in items})
    else:
        kinds = sorted({_type_name(item) for item in items})
    lines = [f"length {len(value)}, items like: {', '.join(kinds) or '(empty)'}"]
    if values:
        lines.append("first items: " + safe_repr(items if isinstance(value, dict) else items, 800))
    return lines


def _code(value: Any) -> list[str]:
    """A function or class: signature, docstring and source (code, not data: both modes)."""
    lines = []
    try:
        lines.append(f"signature: {value.__name__}{inspect.signature(value)}")
    except (TypeError, ValueError):
        pass
    doc = inspect.getdoc(value)
    if doc:
        lines.append("docstring: " + _cut(doc, 600))
    try:
        lines.append("source:\n" + _cut(inspect.getsource(value), 2000))
    except (OSError, TypeError):
        lines.append("source: not available")
    return lines


# -- small helpers ----------------------------------------------------------------------


def _first(value: Any, n: int) -> list[Any]:
    out = []
    for item in value:
        if len(out) == n:
            break
        out.append(item)
    return out


def _type_name(value: Any) -> str:
    kind = type(value)
    module = kind.__module__
    return (
        kind.__qualname__ if module in ("builtins", "__main__") else f"{module}.{kind.__qualname__}"
    )


def _is_pandas(value: Any) -> bool:
    return type(value).__module__.partition(".")[0] == "pandas"


def _is_polars(value: Any) -> bool:
    return type(value).__module__.partition(".")[0] == "polars"


def _is_numpy_array(value: Any) -> bool:
    return type(value).__module__ == "numpy" and type(value).__name__ == "ndarray"


def _bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 20)] + f"… [{len(text):,} chars]"
