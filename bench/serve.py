"""Run one loopback protocol server in its own process for the benchmarks.

    python bench/serve.py anthropic 500   # prints the URL, serves replies of 500 chunks

or, from a benchmark, ``with serving("anthropic", 500) as url: ...``. A separate process
keeps the server's work off the benchmarked process (and its GIL).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent


@contextmanager
def serving(protocol: str, chunks: int) -> Iterator[str]:
    """Start ``serve.py`` for ``protocol`` (replies of ``chunks`` pieces); yield its URL."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "serve.py"), protocol, str(chunks)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    sys.path.insert(0, str(HERE.parent))
    from tests.servers import AnthropicServer, OllamaServer, OpenAIServer, Text

    servers = {"anthropic": AnthropicServer, "openai": OpenAIServer, "ollama": OllamaServer}
    protocol, chunks = sys.argv[1], int(sys.argv[2])
    server = servers[protocol]()
    server.default_reply = Text(" ".join(f"w{i}" for i in range(chunks)), chunks=chunks)
    server.start()
    print(server.url, flush=True)
    threading.Event().wait()  # until the parent kills us


if __name__ == "__main__":
    main()
