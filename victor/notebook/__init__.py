"""victor in Jupyter: the ``%%victor`` magics, live streaming output, nested event loops.

``%load_ext victor`` registers the magics and (opt-in by loading it) lets
``asyncio.run(main())`` work inside a cell. Nothing here is imported by ``import victor``.
"""

from __future__ import annotations

import os
from typing import Any

from .._sync import run_sync
from .stream import StreamView

__all__ = [
    "StreamView",
    "allow_nested_loops",
    "load_ipython_extension",
    "run_sync",
    "unload_ipython_extension",
]


def allow_nested_loops() -> bool:
    """Make ``asyncio.run()`` and ``loop.run_until_complete()`` work while a loop runs.

    Uses ``nest_asyncio2`` (the maintained fork of ``nest_asyncio``; either one works).
    The patch is process-wide and cannot be fully undone: asyncio switches to its pure
    Python Task and Future (a little slower), and a nested run blocks the outer loop
    until it finishes. Returns True once the patch is in place.
    """
    try:
        import nest_asyncio2 as nest_asyncio
    except ImportError:  # pragma: no cover - the older package, if that is what is installed
        try:
            import nest_asyncio  # type: ignore[no-redef]
        except ImportError:
            from ..errors import ConfigurationError

            raise ConfigurationError(
                "nested event loops need nest-asyncio2: pip install 'victor-ai[notebook]'"
            ) from None
    nest_asyncio.apply()
    return True


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext victor``: register ``%%victor``/``%victor`` and allow nested loops.

    Set ``VICTOR_NESTED_LOOPS=0`` to keep asyncio unpatched.
    """
    from ..tools.registry import registry
    from .magics import VictorMagics
    from .prompt import keep_question_marks
    from .workspace import register

    ipython.register_magics(VictorMagics(ipython))
    register(registry)  # the notebook toolset: `%victor list` shows it from now on
    if keep_question_marks not in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.append(keep_question_marks)
    if os.environ.get("VICTOR_NESTED_LOOPS", "1").strip() not in ("0", "false", "no"):
        allow_nested_loops()


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext victor``: remove the magics (the asyncio patch stays: it cannot be undone)."""
    from .prompt import keep_question_marks

    if keep_question_marks in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.remove(keep_question_marks)
    magics = ipython.magics_manager.magics
    for kind in ("line", "cell"):
        magics[kind].pop("victor", None)
    ipython.magics_manager.registry.pop("VictorMagics", None)
