"""Running the app with uvicorn: in the foreground (``victor serve``) or on a thread of its
own (notebooks, tests): ``with victor.serve.start(settings) as server: server.url``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from .._util import needs_extra
from ..errors import ConfigurationError
from .settings import ServeSettings

__all__ = ["run", "start", "BackgroundServer"]


def _uvicorn() -> Any:
    with needs_extra("serve", "victor serve"):
        import uvicorn
    return uvicorn


def run(
    settings: ServeSettings | None = None,
    *,
    log_level: str = "info",
    announce: Callable[[], object] | None = None,
) -> None:
    """Serve until interrupted (Ctrl-C), on ``settings.host``:``settings.port``;
    ``announce`` is called once the app is made, so a missing extra is said before it."""
    from . import create_app

    settings = (settings or ServeSettings()).check()
    uvicorn = _uvicorn()
    app = create_app(settings)
    if announce is not None:
        announce()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        lifespan="on",
        ws="none",
        timeout_graceful_shutdown=5,
    )


class BackgroundServer:
    """The app served by uvicorn on a daemon thread; ``url`` once started, ``stop()``."""

    def __init__(self, app: Any, *, host: str, port: int, log_level: str = "warning") -> None:
        uvicorn = _uvicorn()
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            lifespan="on",
            ws="none",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="victor-serve", daemon=True)
        self.host = host
        self.port = port
        #: The app being served (``app.state.victor`` has the server's state).
        self.app = app

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise ConfigurationError(
                    f"the server did not start on {self.host}:{self.port} (see the log above)"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise ConfigurationError(f"the server did not start within {timeout} s")
            time.sleep(0.01)
        socket = self._server.servers[0].sockets[0]
        self.port = socket.getsockname()[1]  # the real one when port=0 asked for any
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        """Stop serving (open streams are cut after two seconds) and wait for the thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<victor server at {self.url}>"


def start(
    settings: ServeSettings | None = None, *, port: int = 0, log_level: str = "warning"
) -> BackgroundServer:
    """Serve ``settings`` on a background thread and return once it accepts requests.

    It listens on ``settings.host`` and ``port`` (default 0: any free port; ``server.url``
    says which), not on ``settings.port``.
    """
    from . import create_app

    settings = (settings or ServeSettings()).check()
    app = create_app(settings)
    return BackgroundServer(app, host=settings.host, port=port, log_level=log_level).start()
