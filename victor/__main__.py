"""``python -m victor``: the ``victor`` command."""

from .cli import main

raise SystemExit(main())
