"""The kernel's side of the notebook toolset: its namespace, its last error, its cells.

Imported without IPython (it is looked up when a tool runs), so the tools exist anywhere
and say plainly, outside a kernel, that there is no kernel to read.
"""

from __future__ import annotations

import json
import linecache
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from ...errors import ToolError
from .describe import _cut, safe_repr

__all__ = ["last_error", "read_cells", "shell"]

#: Characters of one cell's source and of one output shown by read_cells.
CELL_CHARS = 1500
OUTPUT_CHARS = 500


def shell() -> Any:
    """The running IPython shell, or a ``ToolError`` saying there is none."""
    try:
        from IPython import get_ipython
    except ImportError:
        raise ToolError(
            "not in a Jupyter kernel: IPython is not installed, so the notebook tools have no "
            "variables, errors or cells to read (install victor's notebook extra and run the "
            "agent in a notebook)"
        ) from None
    found = get_ipython()
    if found is None:
        raise ToolError(
            "not in a Jupyter kernel: the notebook tools read a kernel's variables, errors "
            "and cells; run the agent in a notebook cell (after %load_ext victor)"
        )
    return found


def last_error(ip: Any, values: bool, max_chars: int) -> str:
    """The last exception, its traceback with source lines, and the cell that raised it;
    with ``values``, the innermost frame's local variables too (bounded reprs)."""
    error = getattr(sys, "last_value", None)
    if error is None:
        return "No error yet: no cell has raised an exception in this kernel."
    tb = getattr(sys, "last_traceback", None) or error.__traceback__
    frames = [  # IPython's own frame (run_code) is noise; the innermost frames say the most
        f for f in traceback.extract_tb(tb) if "IPython" + os.sep + "core" not in f.filename
    ][-8:]
    lines = [f"{type(error).__name__}: {_cut(str(error), 500)}", "traceback (innermost last):"]
    for frame in frames:
        where = _cell_label(ip, frame.filename) or frame.filename
        lines.append(f"  {where}, line {frame.lineno}, in {frame.name}")
        if frame.line:
            lines.append(f"    {frame.line.strip()}")
    # The cell that was run: the outermost cell frame (inner ones may be cells that
    # defined a function it called).
    cell = next((f.filename for f in frames if _cell_label(ip, f.filename)), None)
    if cell:
        source = "".join(linecache.getlines(cell))
        lines.append(f"the cell that raised it ({_cell_label(ip, cell)}):\n{_cut(source, 1500)}")
    if values and tb is not None:
        inner = tb
        while inner.tb_next is not None:
            inner = inner.tb_next
        local = {k: v for k, v in inner.tb_frame.f_locals.items() if not k.startswith("_")}
        if inner.tb_frame.f_globals is not inner.tb_frame.f_locals:
            lines.append("local variables of the innermost frame:")
            lines += [f"  {k} = {safe_repr(v, 200)}" for k, v in list(local.items())[:20]]
    else:
        lines.append("(schema mode: no variable values; context='values' adds the frame's locals)")
    return _cut("\n".join(lines), max_chars)


def _cell_label(ip: Any, filename: str) -> str | None:
    """``cell In[n]`` for a cell's code file (IPython's compiler names them), else None."""
    if filename.startswith("<ipython-input-"):
        return f"cell In[{filename.split('-')[2]}]"
    if not (filename.startswith("/tmp/ipykernel_") or "ipykernel_" in filename):
        return None
    source = "".join(linecache.getlines(filename))
    history = ip.user_ns.get("In", [])
    for number in range(len(history) - 1, 0, -1):
        if history[number].strip() == source.strip():
            return f"cell In[{number}]"
    return "a cell"


def notebook_path(ip: Any) -> Path | None:
    """The saved notebook's path, when the kernel knows it: JupyterLab and Notebook 7 set
    ``JPY_SESSION_NAME``, VS Code ``__vsc_ipynb_file__``, some set ``__session__``."""
    ns = ip.user_ns
    for candidate in (
        os.environ.get("JPY_SESSION_NAME"),
        ns.get("__vsc_ipynb_file__"),
        ns.get("__session__"),
    ):
        if isinstance(candidate, str) and candidate.endswith(".ipynb"):
            path = Path(candidate).expanduser()
            if path.is_file():
                return path
    return None


def read_cells(ip: Any, values: bool, last: int, max_chars: int) -> str:
    """The last ``last`` cells with their text outputs (``values`` only), from the saved
    notebook when the kernel knows its path, else from the kernel's In/Out history."""
    path = notebook_path(ip)
    if path is not None:
        import nbformat  # the notebook extra's (jupyter); only this tool needs it

        cells = nbformat.read(path, as_version=4).cells
        source = f"the saved notebook {path.name} (unsaved edits in the front end are not visible)"
        shown = [
            (f"[{i}] {cell.cell_type}", cell.source, _outputs(cell) if values else [])
            for i, cell in enumerate(cells)
        ][-last:]
    else:
        history = list(ip.user_ns.get("In", []))
        outputs = ip.user_ns.get("Out", {})
        source = (
            "the kernel's input history In/Out (the kernel does not know the notebook's file: "
            "cells not run, markdown and unsaved edits are not visible)"
        )
        shown = [
            (
                f"In[{n}]",
                history[n],
                [safe_repr(outputs[n], OUTPUT_CHARS)] if values and n in outputs else [],
            )
            for n in range(1, len(history))
        ][-last:]
    lines = [f"source: {source}"]
    for label, code, outs in shown:
        lines.append(f"{label}:\n{_cut(code, CELL_CHARS)}")
        lines += [f"  output: {out}" for out in outs]
    if not values:
        lines.append("(schema mode: outputs are not shown; context='values' shows them)")
    return _cut("\n".join(lines), max_chars)


def _outputs(cell: Any) -> list[str]:
    """A code cell's text outputs, each cut short (images and HTML are named, not sent)."""
    found = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            found.append(_cut(out.get("text", ""), OUTPUT_CHARS))
        elif out.get("output_type") == "error":
            found.append(f"{out.get('ename')}: {_cut(out.get('evalue', ''), OUTPUT_CHARS)}")
        elif "data" in out:
            data = out["data"]
            text = data.get("text/plain")
            found.append(
                _cut(text if isinstance(text, str) else json.dumps(text), OUTPUT_CHARS)
                if text is not None
                else f"({', '.join(data)})"
            )
    return found
