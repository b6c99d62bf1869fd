"""What victor adds on top of the raw SDKs: per call, per streamed chunk, under
concurrency, and at import. Not a test; prints medians and ratios.

    python bench/overhead.py [--calls 200] [--chunks 500] [--concurrent 100] [--rounds 3]

Both sides talk to the same loopback protocol server (run in its own process), and the
measurements are interleaved so drift on a busy machine hits both alike. (a) and (b) run
in ``--rounds`` rounds: the figures are over all of them, with the spread of the added
cost between rounds, since a shared machine moves a single round by tens of µs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence

from serve import serving  # bench/ is on sys.path when a script here runs

MESSAGES = [{"role": "user", "content": "Say something"}]
#: Sent by the raw side too, so both make the same request: an agent sends its
#: temperature (0.7 by default) on every call. Anthropic's SDK (2.x) has no parameter
#: for it, so there, as in victor, it goes in ``extra_body``.
TEMPERATURE = 0.7


#: Calls of each kind made before timing: connections, caches, lazy imports warm up.
WARM_UP = 5


async def rotated(
    calls: dict[str, Callable[[], Awaitable[object]]], n: int
) -> dict[str, list[float]]:
    """Time ``n`` calls of each, every round all of them in an order that turns from round
    to round, so a machine that speeds up or slows down hits them alike."""
    for _ in range(WARM_UP):
        for call in calls.values():
            await call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for i in range(n):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            start = time.perf_counter()
            await calls[name]()
            times[name].append(time.perf_counter() - start)
    return times


async def interleaved(
    raw: Callable[[], Awaitable[object]], ours: Callable[[], Awaitable[object]], n: int
) -> tuple[list[float], list[float]]:
    """Time ``n`` calls of each, alternating which goes first."""
    times = await rotated({"raw": raw, "ours": ours}, n)
    return times["raw"], times["ours"]


Timings = tuple[list[float], list[float]]  # (raw, victor) of one interleaved round


def merged(rounds: list[Timings]) -> Timings:
    """Several rounds' timings as one."""
    return [t for raw, _ in rounds for t in raw], [t for _, ours in rounds for t in ours]


def report(
    label: str,
    raw: list[float],
    ours: list[float],
    per: int = 1,
    unit: str = "call",
    rounds: Sequence[Timings] = (),
) -> None:
    """Medians and their ratio; with ``rounds``, the spread of the added cost between them."""
    r, o = statistics.median(raw), statistics.median(ours)
    added_us = (o - r) / per * 1e6
    spread = ""
    if len(rounds) > 1:
        each = [(statistics.median(b) - statistics.median(a)) / per * 1e6 for a, b in rounds]
        spread = f"  (rounds {min(each):+.1f}..{max(each):+.1f})"
    print(
        f"  {label:<34} raw {r * 1e3:8.2f} ms  victor {o * 1e3:8.2f} ms  "
        f"added {added_us:+8.1f} µs/{unit}  ratio {o / r:5.3f}{spread}"
    )


def anthropic_raw(url: str, stream: bool):
    """The raw SDK call, and the Agent settings that make the same request."""
    import anthropic

    client = anthropic.AsyncAnthropic(base_url=url, api_key="bench", max_retries=0)

    async def raw_call() -> object:
        if not stream:
            msg = await client.messages.create(
                model="claude-sonnet-4-20250514", max_tokens=1024, messages=MESSAGES,
                extra_body={"temperature": TEMPERATURE},
            )  # fmt: skip
            return msg.content[0].text
        parts = []
        events = await client.messages.create(
            model="claude-sonnet-4-20250514", max_tokens=1024, messages=MESSAGES, stream=True,
            extra_body={"temperature": TEMPERATURE},
        )  # fmt: skip
        async for event in events:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                parts.append(event.delta.text)
        return "".join(parts)

    return client, raw_call, {"provider": "anthropic", "base_url": url}


def openai_raw(url: str, stream: bool):
    """The raw SDK call, and the Agent settings that make the same request."""
    import openai

    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="bench", max_retries=0)

    async def raw_call() -> object:
        if not stream:
            r = await client.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, max_tokens=1024, temperature=TEMPERATURE
            )
            return r.choices[0].message.content
        parts = []
        chunks = await client.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            max_tokens=1024,
            temperature=TEMPERATURE,
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in chunks:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
        return "".join(parts)

    return client, raw_call, {"provider": "openai", "base_url": url + "/v1"}


RAW = {"anthropic": anthropic_raw, "openai": openai_raw}


def pair(protocol: str, url: str, stream: bool):
    """(raw call, the same call through victor, close both) for one protocol."""
    from victor import Agent

    client, raw_call, settings = RAW[protocol](url, stream)
    agent = Agent(api_key="bench", max_tokens=1024, **settings)

    async def our_call() -> object:
        if not stream:
            return await agent.run("Say something")
        return "".join([t async for t in agent.astream("Say something")])

    async def close() -> None:
        await client.close()
        await agent.cleanup()

    return raw_call, our_call, close


async def bench_protocol(protocol: str, args: argparse.Namespace) -> None:
    print(f"{protocol}:")
    with serving(protocol, 20) as url:
        raw, ours, close = pair(protocol, url, stream=False)
        rounds = [await interleaved(raw, ours, args.calls) for _ in range(args.rounds)]
        report("(a) run vs create, 20-word reply", *merged(rounds), rounds=rounds)

        async def raw_many() -> object:
            return await asyncio.gather(*(raw() for _ in range(args.concurrent)))

        async def our_many() -> object:
            return await asyncio.gather(*(ours() for _ in range(args.concurrent)))

        report(
            f"(c) {args.concurrent} concurrent runs",
            *await interleaved(raw_many, our_many, 30),
            per=args.concurrent,
        )
        await close()
    with serving(protocol, args.chunks) as url:
        raw, ours, close = pair(protocol, url, stream=True)
        calls = max(10, args.calls // 10)
        rounds = [await interleaved(raw, ours, calls) for _ in range(args.rounds)]
        report(
            f"(b) astream vs stream, {args.chunks} chunks",
            *merged(rounds),
            per=args.chunks,
            unit="chunk",
            rounds=rounds,
        )
        await close()


def bench_import(repeat: int = 15) -> None:
    def wall(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - start

    base, ours = [], []
    for _ in range(repeat):
        base.append(wall("pass"))
        ours.append(wall("from victor import Agent"))
    b, o = statistics.median(base), statistics.median(ours)
    print(
        f"(d) import: python -c pass {b * 1e3:.0f} ms, `from victor import Agent` {o * 1e3:.0f} ms "
        f"wall (+{(o - b) * 1e3:.0f} ms)"
    )
    heavy = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, victor.core.agent; print(sorted(m for m in "
            "('anthropic','openai','httpx','IPython','ipywidgets','jsonschema') "
            "if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(f"    heavy modules loaded by `import victor.core.agent`: {heavy}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=500)
    parser.add_argument("--concurrent", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (a) and (b)")
    parser.add_argument("--protocols", default="anthropic,openai")
    args = parser.parse_args()
    for protocol in args.protocols.split(","):
        asyncio.run(bench_protocol(protocol, args))
    bench_import()


if __name__ == "__main__":
    main()
