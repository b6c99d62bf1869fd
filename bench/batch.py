"""What ``victor.batch`` costs over a hand-written ``asyncio.gather`` with a semaphore, and
what the Ray backend costs over the local one. Not a test; prints medians and ratios.

    python bench/batch.py [--items 1000] [--concurrency 16] [--rounds 5] [--no-ray]

Every run is one ``agent.run`` against a loopback Anthropic-protocol server in its own
process (bench/serve.py), so both sides make the same 1,000 real HTTP requests through the
official SDK. The local rounds are interleaved so drift on a busy machine hits both alike.
Ray runs on this machine (2 CPUs, 2 actors): the whole batch, actor start-up included as a
user sees it, and the time per item once the pipeline is full, which leaves start-up out.
The key is in the environment Ray's workers inherit (``forward_env=False``): a per-actor
runtime environment would add seconds to each actor's start-up, not what this measures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from serve import serving  # bench/ is on sys.path when a script here runs

import victor
from victor import Agent


async def hand_written(agent: Agent, items: list[str], concurrency: int) -> list[str]:
    """What users write today: gather with a semaphore (no retries, checkpoint, progress)."""
    slots = asyncio.Semaphore(concurrency)

    async def one(item: str) -> str:
        async with slots:
            return await agent.run(item)

    return await asyncio.gather(*(one(item) for item in items))


async def with_batch(agent: Agent, items: list[str], concurrency: int, **options) -> list[str]:
    results = await victor.batch(items, agent, concurrency=concurrency, progress=False, **options)
    assert not results.failed, results.failed[:3]
    return results.outputs


async def timed(coro) -> float:
    start = time.perf_counter()
    await coro
    return time.perf_counter() - start


def line(label: str, base: float, ours: float, items: int) -> str:
    added = (ours - base) / items * 1e6
    return (
        f"  {label:<38} {base:7.2f} s -> {ours:7.2f} s   ratio {ours / base:5.3f}   "
        f"{added:+8.1f} µs/item"
    )


async def bench_local(url: str, args: argparse.Namespace) -> None:
    agent = Agent(provider="anthropic", base_url=url, max_retries=0)
    items = [f"question {i}" for i in range(args.items)]
    await hand_written(agent, items[:50], args.concurrency)  # warm up: imports, connections
    await with_batch(agent, items[:50], args.concurrency)
    gather_t: list[float] = []
    batch_t: list[float] = []
    for round in range(args.rounds):
        pair = [
            (hand_written(agent, items, args.concurrency), gather_t),
            (with_batch(agent, items, args.concurrency), batch_t),
        ]
        for coro, out in pair if round % 2 else reversed(pair):
            out.append(await timed(coro))
    await agent.cleanup()
    g, b = statistics.median(gather_t), statistics.median(batch_t)
    print(f"{args.items} runs, concurrency {args.concurrency}, median of {args.rounds} rounds:")
    print(line("asyncio.gather + semaphore -> batch", g, b, args.items))


async def steady(
    agent: Agent, items: list[str], concurrency: int, **options
) -> tuple[float, float]:
    """(total seconds, seconds per item once the pipeline is full: from the result that
    comes after the first ``2 * concurrency`` to the last, which leaves start-up out)."""
    skip = 2 * concurrency
    started = time.perf_counter()
    full = 0.0
    count = 0
    run = victor.batch(items, agent, concurrency=concurrency, progress=False, **options)
    async for result in run:
        assert result.ok, result.error
        count += 1
        if count == skip:
            full = time.perf_counter()
    end = time.perf_counter()
    return end - started, (end - full) / (count - skip)


async def bench_ray(url: str, args: argparse.Namespace) -> None:
    import ray

    home = tempfile.mkdtemp(prefix="vray")
    token = Path(home, "auth_token")
    token.write_text(secrets.token_hex(16))
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(token)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started = time.perf_counter()
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _temp_dir=str(Path(home, "session")),
        object_store_memory=80 * 1024 * 1024,
        log_to_driver=False,
    )
    print(f"Ray on this machine (2 CPUs, 2 actors), median of {args.ray_rounds} rounds:")
    print(f"  ray.init: {time.perf_counter() - started:.1f} s (once per process)")
    try:
        agent = Agent(provider="anthropic", base_url=url, max_retries=0)
        items = [f"question {i}" for i in range(args.items)]
        ray_options = {"backend": "ray", "workers": 2, "ray_options": {"forward_env": False}}
        local_runs, ray_runs = [], []
        for _ in range(args.ray_rounds):
            local_runs.append(await steady(agent, items, args.concurrency))
            ray_runs.append(await steady(agent, items, args.concurrency, **ray_options))
        await agent.cleanup()
        local_total = statistics.median(t for t, _ in local_runs)
        ray_total = statistics.median(t for t, _ in ray_runs)
        local_item = statistics.median(p for _, p in local_runs)
        ray_item = statistics.median(p for _, p in ray_runs)
        print(line("local -> Ray, whole batch", local_total, ray_total, args.items))
        print(
            f"  {'local -> Ray, per item once running':<38} {local_item * 1e6:7.0f} µs -> "
            f"{ray_item * 1e6:7.0f} µs   ratio {ray_item / local_item:5.3f}   "
            f"{(ray_item - local_item) * 1e6:+8.1f} µs/item"
        )
    finally:
        ray.shutdown()
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ray-rounds", type=int, default=3)
    parser.add_argument("--chunks", type=int, default=20, help="words per model reply")
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    os.environ["ANTHROPIC_API_KEY"] = "bench"  # before ray.init: Ray's workers inherit it
    with serving("anthropic", args.chunks) as url:
        asyncio.run(bench_local(url, args))
        if not args.no_ray:
            asyncio.run(bench_ray(url, args))


if __name__ == "__main__":
    main()
