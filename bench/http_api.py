"""What serving adds: ``victor serve``'s SSE stream against in-process ``astream``, per
streamed event and under concurrency. Not a test; prints medians and ratios.

    python bench/http_api.py [--chunks 500] [--rounds 20] [--concurrent 100]

Three processes: the Anthropic protocol server (``bench/serve.py``), the victor server
(this script with ``--serve``), and the client here, so no side's work lands on another's
GIL. Both sides stream the same 500-chunk answer from the same model server; the HTTP side
splits the stream into events and decodes each text event's JSON, as a client would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from overhead import interleaved, report  # bench/ is on sys.path when a script here runs
from serve import serving

HERE = Path(__file__).resolve().parent
TASK = "Say something"


@contextmanager
def victor_server(model_url: str, max_runs: int) -> Iterator[str]:
    """``victor serve`` (an Anthropic agent on ``model_url``) in its own process."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", model_url, "--max-runs", str(max_runs)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.kill()
        proc.wait()


def serve(model_url: str, max_runs: int) -> None:
    sys.path.insert(0, str(HERE.parent))
    from victor import Agent
    from victor.serve import ServeSettings, start

    agent = Agent(provider="anthropic", base_url=model_url, api_key="bench", max_tokens=1024)
    settings = ServeSettings(agents={"bench": agent}, max_concurrent_runs=max_runs, mcp=False)
    server = start(settings, log_level="error")
    print(server.url, flush=True)
    threading.Event().wait()  # until the parent kills us


async def bench(args: argparse.Namespace) -> None:
    import httpx

    from victor import Agent

    with serving("anthropic", args.chunks) as model_url:
        with victor_server(model_url, args.concurrent + 10) as victor_url:
            agent = Agent(
                provider="anthropic", base_url=model_url, api_key="bench", max_tokens=1024
            )
            # Idle connections are dropped before uvicorn would close them (5 s).
            limits = httpx.Limits(max_connections=args.concurrent + 10, keepalive_expiry=2)
            client = httpx.AsyncClient(base_url=victor_url, timeout=60, limits=limits)

            async def in_process() -> str:
                return "".join([t async for t in agent.astream(TASK)])

            async def over_sse() -> str:
                parts: list[str] = []
                rest = b""
                async with client.stream("POST", "/v1/runs/stream", json={"task": TASK}) as r:
                    async for chunk in r.aiter_bytes():
                        *events, rest = (rest + chunk).split(b"\n\n")
                        for event in events:  # "event: <kind>\ndata: <json>"
                            kind, _, data = event.partition(b"\ndata: ")
                            if kind == b"event: text":
                                parts.append(json.loads(data)["text"])
                if len(parts) != args.chunks:
                    raise AssertionError(f"{len(parts)} text events, expected {args.chunks}")
                return "".join(parts)

            assert await in_process() == await over_sse()
            print(f"victor serve over SSE vs in-process astream ({args.chunks}-chunk answer):")
            report(
                f"(a) one stream, {args.chunks} events",
                *await interleaved(in_process, over_sse, args.rounds),
                per=args.chunks,
                unit="event",
            )

            async def many_in_process() -> object:
                return await asyncio.gather(*(in_process() for _ in range(args.concurrent)))

            async def many_over_sse() -> object:
                return await asyncio.gather(*(over_sse() for _ in range(args.concurrent)))

            report(
                f"(b) {args.concurrent} concurrent streams",
                *await interleaved(many_in_process, many_over_sse, max(3, args.rounds // 4)),
                per=args.concurrent * args.chunks,
                unit="event",
            )
            await client.aclose()
            await agent.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=100)
    parser.add_argument("--serve", metavar="MODEL_URL", help=argparse.SUPPRESS)
    parser.add_argument("--max-runs", type=int, default=110, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve, args.max_runs)
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
