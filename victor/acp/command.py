"""``victor acp [APP] [--agent NAME] [--profile NAME]``: an agent or team for ACP clients."""

from __future__ import annotations

import argparse

__all__ = ["main"]


def main(args: argparse.Namespace) -> int:
    from ..hosting.catalog import Catalog, load_app
    from .stdio import serve_stdio

    served = load_app(args.app) if args.app else {}
    if not served and not args.profile:
        catalog = Catalog({"victor": _default_agent()})
    else:
        catalog = Catalog(served, profiles=[args.profile] if args.profile else ())  # type: ignore[arg-type]
    serve_stdio(catalog, args.agent or args.profile)
    return 0


def _default_agent():  # type: ignore[no-untyped-def]
    """What ``victor run`` would use: the provider from $VICTOR_PROVIDER (or ollama)."""
    from ..core.agent import Agent

    return Agent(name="victor")
