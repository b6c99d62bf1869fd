"""victor as an ACP agent (extra ``acp``): ``victor acp app.py`` serves an agent or team to
editors and chat panels that speak the Agent Client Protocol (Zed, Jupyter AI, marimo).

    from victor.acp import serve_stdio
    serve_stdio(agent)        # JSON-RPC on stdin/stdout until the client goes away

The protocol SDK (``agent-client-protocol``) is imported by ``serve_stdio``, never by
``import victor``.
"""

from __future__ import annotations

from .stdio import serve, serve_stdio

__all__ = ["serve", "serve_stdio"]
