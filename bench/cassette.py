"""What a cassette costs: replaying a 500-chunk stream against streaming it live from the
loopback server (target: no slower), recording it against live, and the cassette's size per
1,000 chunks. Not a test; prints medians and ratios.

    python bench/cassette.py [--chunks 500] [--calls 30] [--protocols anthropic,openai,ollama]

Each call is one ``provider.stream`` of the whole answer through victor and the SDK. A
replay opens the cassette (reads and parses the file) and replays the stream in the same
call, as a test does; live and replay calls take turns (``overhead.rotated``). The server
runs in its own process (``serve.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
from pathlib import Path

from overhead import rotated  # bench/ is on sys.path when a script here runs
from serve import serving

from victor.core.messages import Message, TextDelta
from victor.providers.base import get_provider_class
from victor.testing import cassette

MESSAGES = [Message.user("Say something")]


def provider(protocol: str, url: str):
    base_url = url + "/v1" if protocol == "openai" else url
    key = {} if protocol == "ollama" else {"api_key": "sk-bench"}
    return get_provider_class(protocol)(base_url=base_url, max_retries=0, **key)


async def stream(model) -> int:
    deltas = 0
    async for event in model.stream(MESSAGES):
        deltas += type(event) is TextDelta
    return deltas


async def bench_protocol(protocol: str, args: argparse.Namespace, folder: Path) -> None:
    path = folder / f"{protocol}.json"
    with serving(protocol, args.chunks) as url:
        model = provider(protocol, url)
        with cassette(path, "all"):
            assert await stream(model) == args.chunks
        stored = json.loads(path.read_text())["interactions"][0]["response"]["stream"]
        events = sum(len(chunk.get("events", [])) for chunk in stored)

        async def live() -> None:
            await stream(model)

        async def replay() -> None:
            with cassette(path, "none"):
                await stream(model)

        async def record() -> None:
            with cassette(folder / "again.json", "all"):
                await stream(model)

        times = await rotated({"live": live, "replay": replay, "record": record}, args.calls)
        await model.close()
    median = {name: statistics.median(values) for name, values in times.items()}
    size = path.stat().st_size
    print(
        f"{protocol:9} {args.chunks} text chunks ({len(stored)} received chunks, {events} "
        f"events): live {median['live'] * 1e3:6.1f} ms, replay {median['replay'] * 1e3:6.1f} "
        f"ms ({median['replay'] / median['live']:.2f}x), record "
        f"{median['record'] * 1e3:6.1f} ms ({median['record'] / median['live']:.2f}x); "
        f"cassette {size / 1e3:.0f} kB = {size / args.chunks:.0f} kB per 1,000 chunks"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=500)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--protocols", default="anthropic,openai,ollama")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for protocol in args.protocols.split(","):
            await bench_protocol(protocol, args, Path(folder))


if __name__ == "__main__":
    asyncio.run(main())
