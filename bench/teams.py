"""Team overhead: a hierarchical team (1 lead + 20 members) and a consensus of 50 agents
against the Anthropic protocol server, versus the same requests made as raw concurrent
SDK calls; and events per second through a team's bus chain. Not a test.

    python bench/teams.py [--repeat 5]

The server runs in its own process (this file with ``--serve``), fed the replies of each
run over stdin, so its work stays off the measured process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MEMBER_REPLY = " ".join(f"w{i}" for i in range(50))


def serve() -> None:
    """Child process: an Anthropic server whose script grows by JSON lines on stdin."""
    from tests.servers import AnthropicServer, Text

    server = AnthropicServer().start()
    print(server.url, flush=True)
    for line in sys.stdin:
        server.script(*(Text(text) for text in json.loads(line)))


class Server:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()

    def script(self, texts: list[str]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(texts) + "\n")
        self.proc.stdin.flush()
        time.sleep(0.05)  # let the child enqueue before the requests start

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def hierarchical_script(members: int) -> list[str]:
    plan = {
        "subtasks": [{"id": i, "assignee": f"m{i}", "task": f"part {i}"} for i in range(members)]
    }
    return [json.dumps(plan), *[MEMBER_REPLY] * members, '{"decision": "accept"}', "final answer"]


def consensus_script(agents: int) -> list[str]:
    return ["42"] * agents + ['{"vote": "A", "reason": "right"}'] * agents


async def team_run(url: str, kind: str, n: int) -> tuple[float, int]:
    from victor import AgentTeam
    from victor.core.events import EventBus

    if kind == "hierarchical":
        team = AgentTeam.hierarchical(
            "lead", [f"m{i}" for i in range(n)], provider="anthropic", base_url=url, api_key="bench"
        )
    else:
        team = AgentTeam.consensus(
            [f"a{i}" for i in range(n)], provider="anthropic", base_url=url, api_key="bench"
        )
    events = 0

    def count(event: object) -> None:
        nonlocal events
        events += 1

    EventBus.subscribe("*", count)
    try:
        started = time.perf_counter()
        await team.run("benchmark task")
        return time.perf_counter() - started, events
    finally:
        EventBus.unsubscribe("*", count)
        await team.cleanup()


async def raw_run(url: str, kind: str, n: int) -> float:
    """The same requests through the anthropic SDK directly, streamed, same concurrency."""
    import anthropic

    client = anthropic.AsyncAnthropic(base_url=url, api_key="bench")

    async def one() -> str:
        async with client.messages.stream(
            model="claude-sonnet-4-20250514",
            max_tokens=1024,
            messages=[{"role": "user", "content": "benchmark task"}],
        ) as stream:
            return "".join([text async for text in stream.text_stream])

    started = time.perf_counter()
    if kind == "hierarchical":
        await one()
        await asyncio.gather(*(one() for _ in range(n)))
        await one()
        await one()
    else:
        await asyncio.gather(*(one() for _ in range(n)))
        await asyncio.gather(*(one() for _ in range(n)))
    elapsed = time.perf_counter() - started
    await client.close()
    return elapsed


async def bus_throughput(n: int = 200_000) -> float:
    """Events per second through member bus -> run bus -> team bus -> default bus."""
    from victor.core.events import EventBus, EventScope

    default = EventBus()
    team_bus = EventBus(parent=default)
    run_bus = EventBus(parent=team_bus)
    member_bus = EventBus(parent=run_bus)
    seen = []
    default.subscribe("provider.*", seen.append)
    scope = EventScope(member_bus, run_id="run_x", agent="m1", parent="team_x")
    started = time.perf_counter()
    for _ in range(n):
        await scope.emit("provider.request", {"provider": "anthropic"})
    elapsed = time.perf_counter() - started
    assert len(seen) == n
    return n / elapsed


async def main(repeat: int) -> None:
    server = Server()
    try:
        for kind, n, script in (
            ("hierarchical", 20, hierarchical_script),
            ("consensus", 50, consensus_script),
        ):
            ours, raw, rates = [], [], []
            for _ in range(repeat + 1):  # the first round warms up imports and connections
                server.script(script(n))
                elapsed, events = await team_run(server.url, kind, n)
                server.script(script(n))
                raw_elapsed = await raw_run(server.url, kind, n)
                ours.append(elapsed)
                raw.append(raw_elapsed)
                rates.append(events / elapsed)
            ours, raw, rates = ours[1:], raw[1:], rates[1:]
            ratio = statistics.median(ours) / statistics.median(raw)
            print(
                f"{kind:<12} n={n:<3} team {statistics.median(ours) * 1000:7.1f} ms   raw SDK "
                f"{statistics.median(raw) * 1000:7.1f} ms   ratio {ratio:.2f} (target <= 1.2)   "
                f"{statistics.median(rates):8.0f} events/s during the run"
            )
    finally:
        server.close()
    print(f"bus chain (4 levels): {await bus_throughput():,.0f} events/s")


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--repeat", type=int, default=5)
        asyncio.run(main(parser.parse_args().repeat))
