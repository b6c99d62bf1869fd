"""What serving adds: ``victor serve``'s SSE stream against in-process ``astream``, per
streamed event and under concurrency. Not a test; prints medians and ratios.

    python bench/http_api.py [--chunks 500] [--rounds 40] [--concurrent 100]

Three processes: the Anthropic protocol server (``bench/serve.py``), the victor server
(this script with ``--serve``), and the client here, so no side's work lands on another's
GIL. Both sides stream the same 500-chunk answer from the same model server; the HTTP side
splits the stream into events and decodes each text event's JSON, as a client would, with
two clients: aiohttp (``pip install "victor-ai[bench]"``), lean, and httpx, which spends
about 1 ms more of its own per request (a GET to a bare ASGI app on loopback: httpx
1.1-1.7 ms, aiohttp 0.5-0.6 ms, a raw socket 0.3-0.4 ms on a 2-core VM).

(a0) is the floor under (a): the same agent's events, framed the same way, from a bare
ASGI app on the same uvicorn, with no framework, routing, checks or limits. What (a) adds
over (a0) is what victor serve's app costs; what (a0) adds over in-process is HTTP's and the
machine's (on a 2-core VM, three busy processes on two cores).

In-process, (a), (A) and (a0) take turns within each round, so a machine whose speed
drifts (a shared VM's does, by a third) moves them alike; the paired ratio is the median
of each round's own ratio. Besides the wall-clock ratio, each is split: the time to the
first event (what one HTTP request costs: a round trip more, routing, the run's start)
and the stream after it (what each event costs); and the CPU a run takes in all (victor
server + client, against the in-process client; the server's measured over calls in a
row), which does not depend on how three processes share the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from overhead import (  # bench/ is on sys.path when a script here runs
    WARM_UP,
    interleaved,
    report,
    rotated,
)
from serve import serving

HERE = Path(__file__).resolve().parent
TASK = "Say something"


@contextmanager
def victor_server(model_url: str, max_runs: int) -> Iterator[tuple[str, str, int]]:
    """``victor serve`` (an Anthropic agent on ``model_url``) in its own process: its URL,
    the URL of the bare app beside it (``floor_app``), and the process id."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", model_url, "--max-runs", str(max_runs)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip(), proc.stdout.readline().strip(), proc.pid
    finally:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` so far (Linux; None elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve(model_url: str, max_runs: int) -> None:
    sys.path.insert(0, str(HERE.parent))
    from victor import Agent
    from victor.serve import ServeSettings, start
    from victor.serve.runner import BackgroundServer

    agent = Agent(provider="anthropic", base_url=model_url, api_key="bench", max_tokens=1024)
    settings = ServeSettings(agents={"bench": agent}, max_concurrent_runs=max_runs, mcp=False)
    server = start(settings, log_level="error")
    floor = BackgroundServer(floor_app(agent), host="127.0.0.1", port=0, log_level="error")
    print(server.url, floor.start().url, sep="\n", flush=True)
    threading.Event().wait()  # until the parent kills us


def floor_app(agent):
    """The least a server can do for a streamed run: read the body, run the agent, write
    its events as victor serve frames them (``run_started`` first). No framework, routing,
    checks or limits."""
    from victor._util import new_id
    from victor.serve.streaming import agent_sse

    async def app(scope, receive, send) -> None:
        if scope["type"] == "lifespan":  # startup, then shutdown
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            return await send({"type": "lifespan.shutdown.complete"})
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        started = {"run_id": new_id("run"), "agent": "bench"}
        await agent_sse(agent.events(json.loads(body)["task"]), started)(scope, receive, send)

    return app


class Clients:
    """One streamed run of the bench's agent, in-process and over SSE with each client.

    Each call records when its first text arrived (``first``), for the split."""

    def __init__(
        self, agent, victor_url: str, floor_url: str, chunks: int, concurrent: int
    ) -> None:
        import httpx

        self.agent, self.chunks = agent, chunks
        self.first: dict[str, float] = {}
        # Idle connections are dropped before uvicorn would close them (5 s).
        limits = httpx.Limits(max_connections=concurrent + 10, keepalive_expiry=2)
        self.httpx = httpx.AsyncClient(base_url=victor_url, timeout=60, limits=limits)
        self.over_sse = {"httpx": self.over_httpx}
        self.floor_url = floor_url
        try:
            import aiohttp
        except ImportError:
            print("(aiohttp is not installed: pip install aiohttp to measure the lean client)")
        else:  # the lean client: a request costs it about a third of what it costs httpx
            connector = aiohttp.TCPConnector(limit=concurrent + 10, keepalive_timeout=2)
            self.aiohttp = aiohttp.ClientSession(victor_url, connector=connector)
            self.over_sse = {"aiohttp": self.over_aiohttp, **self.over_sse, "floor": self.floor}

    async def in_process(self) -> str:
        started, parts = time.perf_counter(), []
        async for text in self.agent.astream(TASK):
            if not parts:
                self.first["in"] = time.perf_counter() - started
            parts.append(text)
        return "".join(parts)

    async def over_httpx(self) -> str:
        started, parts, rest = time.perf_counter(), [], b""
        async with self.httpx.stream("POST", "/v1/runs/stream", json={"task": TASK}) as r:
            async for chunk in r.aiter_bytes():
                rest = self._texts(rest + chunk, parts, started, "httpx")
        return self._answer(parts)

    async def over_aiohttp(self, url: str = "/v1/runs/stream", key: str = "aiohttp") -> str:
        started, parts, rest = time.perf_counter(), [], b""
        async with self.aiohttp.post(url, json={"task": TASK}) as r:
            async for chunk in r.content.iter_any():
                rest = self._texts(rest + chunk, parts, started, key)
        return self._answer(parts)

    async def floor(self) -> str:
        """The bare app (``floor_app``), with aiohttp."""
        return await self.over_aiohttp(self.floor_url, "floor")

    def _texts(self, received: bytes, parts: list[str], started: float, key: str) -> bytes:
        """The text of each whole event in ``received`` appended to ``parts``, as a client
        would decode it; what is left of an event cut in two."""
        *events, rest = received.split(b"\n\n")
        for event in events:  # "event: <kind>\ndata: <json>"
            kind, _, data = event.partition(b"\ndata: ")
            if kind == b"event: text":
                if not parts:
                    self.first[key] = time.perf_counter() - started
                parts.append(json.loads(data)["text"])
        return rest

    def _answer(self, parts: list[str]) -> str:
        if len(parts) != self.chunks:
            raise AssertionError(f"{len(parts)} text events, expected {self.chunks}")
        return "".join(parts)

    async def aclose(self) -> None:
        await self.httpx.aclose()
        if "aiohttp" in self.over_sse:
            await self.aiohttp.close()


Timed = tuple[float, float, float]  # a call's wall clock, its first text, client CPU


async def timed_rounds(clients: Clients, rounds: int) -> dict[str, list[Timed]]:
    """In-process and each SSE call ``rounds`` times, taking turns (``rotated``), each
    with its wall clock, when its first text came and this process's CPU."""
    calls = {"in": clients.in_process, **clients.over_sse}
    seen: dict[str, list[tuple[float, float]]] = {name: [] for name in calls}

    def measured(name: str, call: Callable[[], Awaitable[str]]) -> Callable[[], Awaitable[str]]:
        async def call_measured() -> str:
            cpu = time.process_time()
            answer = await call()
            seen[name].append((clients.first[name], time.process_time() - cpu))
            return answer

        return call_measured

    walls = await rotated({name: measured(name, call) for name, call in calls.items()}, rounds)
    return {
        name: [(wall, *rest) for wall, rest in zip(walls[name], seen[name][WARM_UP:], strict=True)]
        for name in calls
    }


async def server_cpu(call: Callable[[], Awaitable[str]], pid: int, n: int) -> float | None:
    """CPU seconds the server process spends on one ``call`` (over ``n`` in a row)."""
    before = cpu_seconds(pid)
    for _ in range(n):
        await call()
    after = cpu_seconds(pid)
    return None if before is None or after is None else (after - before) / n


async def one_stream(clients: Clients, rounds: int, pid: int) -> None:
    """(a): the wall-clock ratio of one stream over each client and the bare app, split
    into the time to the first text and the stream after it, and the CPU a run takes."""
    times = await timed_rounds(clients, rounds)
    labels = {"aiohttp": "(a) one stream, aiohttp", "httpx": "(A) one stream, httpx"}
    labels["floor"] = "(a0) bare ASGI app, aiohttp"
    inside = times["in"]
    in_first, in_rest, in_cpu = _medians(inside)
    for name, call in clients.over_sse.items():
        runs = times[name]
        report(labels[name], [t[0] for t in inside], [t[0] for t in runs], clients.chunks, "event")
        paired = statistics.median(ours[0] / raw[0] for raw, ours in zip(inside, runs, strict=True))
        first, rest, cpu = _medians(runs)
        print(
            f"      paired ratio               median of each round's SSE/in-process {paired:5.3f}"
        )
        print(
            f"      first text                 in-process {in_first * 1e3:6.2f} ms  "
            f"SSE {first * 1e3:6.2f} ms  (+{(first - in_first) * 1e3:.2f} ms a request)"
        )
        print(
            f"      the stream after it        in-process {in_rest * 1e3:6.2f} ms  "
            f"SSE {rest * 1e3:6.2f} ms  ratio {rest / in_rest:5.3f}  "
            f"(+{(rest - in_rest) / clients.chunks * 1e6:.2f} µs/event)"
        )
        server = await server_cpu(call, pid, min(rounds, 20))
        if server is not None:
            print(
                f"      CPU per run                in-process {in_cpu * 1e3:6.2f} ms  "
                f"server {server * 1e3:6.2f} + client {cpu * 1e3:5.2f} ms  "
                f"ratio {(server + cpu) / in_cpu:5.3f} (server alone {server / in_cpu:5.3f})"
            )


def _medians(runs: list[Timed]) -> tuple[float, float, float]:
    """Median time to the first text, of the stream after it, and of the client's CPU."""
    return (
        statistics.median(t[1] for t in runs),
        statistics.median(t[0] - t[1] for t in runs),
        statistics.median(t[2] for t in runs),
    )


async def bench(args: argparse.Namespace) -> None:
    from victor import Agent

    with serving("anthropic", args.chunks) as model_url:
        with victor_server(model_url, args.concurrent + 10) as (victor_url, floor_url, pid):
            agent = Agent(
                provider="anthropic", base_url=model_url, api_key="bench", max_tokens=1024
            )
            clients = Clients(agent, victor_url, floor_url, args.chunks, args.concurrent)
            for over_sse in clients.over_sse.values():
                assert await clients.in_process() == await over_sse()
            print(f"victor serve over SSE vs in-process astream ({args.chunks}-chunk answer):")
            await one_stream(clients, args.rounds, pid)

            name, over_sse = next(iter(clients.over_sse.items()))

            async def many_in_process() -> object:
                return await asyncio.gather(*(clients.in_process() for _ in range(args.concurrent)))

            async def many_over_sse() -> object:
                return await asyncio.gather(*(over_sse() for _ in range(args.concurrent)))

            report(
                f"(b) {args.concurrent} concurrent, {name}",
                *await interleaved(many_in_process, many_over_sse, max(3, args.rounds // 4)),
                per=args.concurrent * args.chunks,
                unit="event",
            )
            await clients.aclose()
            await agent.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--concurrent", type=int, default=100)
    parser.add_argument("--serve", metavar="MODEL_URL", help=argparse.SUPPRESS)
    parser.add_argument("--max-runs", type=int, default=110, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve, args.max_runs)
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
