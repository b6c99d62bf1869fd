"""Run one loopback protocol server in its own process for the benchmarks.

    python bench/serve.py anthropic 500   # prints the URL, serves replies of 500 chunks

A separate process keeps the server's work off the benchmarked process (and its GIL).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers import AnthropicServer, OllamaServer, OpenAIServer, Text  # noqa: E402

SERVERS = {"anthropic": AnthropicServer, "openai": OpenAIServer, "ollama": OllamaServer}


def main() -> None:
    protocol, chunks = sys.argv[1], int(sys.argv[2])
    server = SERVERS[protocol]()
    server.default_reply = Text(" ".join(f"w{i}" for i in range(chunks)), chunks=chunks)
    server.start()
    print(server.url, flush=True)
    threading.Event().wait()  # until the parent kills us


if __name__ == "__main__":
    main()
