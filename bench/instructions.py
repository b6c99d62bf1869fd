"""What victor adds to the Anthropic SDK, counted in CPU instructions, which do not move
with the machine's load the way wall-clock time does. Not a test; prints counts and ratios.

    python bench/instructions.py [--calls 10] [--chunks 500]

The loopback Anthropic server's answers (one JSON reply, one SSE stream of ``--chunks``
text events) are recorded once, then replayed inside the measured process through an
``httpx2.MockTransport``, one event per read with a loop turn between reads, to the raw
SDK and to an agent alike: no second process, no network timing. Each side runs under
``valgrind --tool=callgrind`` twice (3 and 3 + N calls: ``--calls`` streams, 20 times as
many plain runs); the difference over N is the cost of one call, start-up and imports
excluded. After the warm-up the heap so far is frozen (``gc.freeze``), so a full
collection of the imported modules' objects does not land on one side's few calls. Needs valgrind
(``apt-get install valgrind``); takes a few minutes (valgrind runs Python ~50x slower).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from overhead import TEMPERATURE  # bench/ is on sys.path when a script here runs
from serve import serving

HERE = Path(__file__).resolve().parent
MESSAGES = [{"role": "user", "content": "Say something"}]
WARM_UP = 3


def record(url: str) -> dict[str, str]:
    """The server's JSON reply and SSE stream for the benchmark's request."""
    import httpx

    headers = {"x-api-key": "bench", "anthropic-version": "2023-06-01"}
    body = {"model": "m", "max_tokens": 10, "messages": MESSAGES}
    reply = httpx.post(f"{url}/v1/messages", json=body, headers=headers).text
    stream = httpx.post(f"{url}/v1/messages", json=body | {"stream": True}, headers=headers)
    return {"json": reply, "sse": stream.text}


def replaying_client(recorded: dict[str, str]):
    """An ``AsyncAnthropic`` whose every request is answered from ``recorded``."""
    import anthropic
    import httpx2

    events = [e + "\n\n" for e in recorded["sse"].split("\n\n") if e]

    class Events(httpx2.AsyncByteStream):
        async def __aiter__(self):
            for event in events:
                await asyncio.sleep(0)  # as a network read would
                yield event.encode()

    def answer(request: httpx2.Request) -> httpx2.Response:
        if json.loads(request.content).get("stream"):
            headers = {"content-type": "text/event-stream"}
            return httpx2.Response(200, headers=headers, stream=Events())
        headers = {"content-type": "application/json"}
        return httpx2.Response(200, headers=headers, content=recorded["json"])

    transport = httpx2.MockTransport(answer)
    return anthropic.AsyncAnthropic(
        api_key="bench", base_url="http://replay", max_retries=0,
        http_client=httpx2.AsyncClient(transport=transport),
    )  # fmt: skip


async def calls(side: str, stream: bool, count: int, recorded: dict[str, str]) -> None:
    """``count`` calls (after a warm-up) of one side: the raw SDK or an agent."""
    from victor import Agent
    from victor.providers.anthropic import AnthropicProvider

    class Replayed(AnthropicProvider):
        def _create_client(self):
            return replaying_client(recorded)

    client = replaying_client(recorded)
    agent = Agent(provider=Replayed(api_key="bench", max_tokens=1024))

    async def raw() -> str:
        request = {
            "model": AnthropicProvider.default_model,
            "max_tokens": 1024,
            "extra_body": {"temperature": TEMPERATURE},  # as an agent sends it
        }
        if not stream:
            message = await client.messages.create(**request, messages=MESSAGES)
            return message.content[0].text
        parts = []
        events = await client.messages.create(**request, messages=MESSAGES, stream=True)
        async for event in events:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                parts.append(event.delta.text)
        return "".join(parts)

    async def ours() -> str:
        if not stream:
            return await agent.run("Say something")
        return "".join([text async for text in agent.astream("Say something")])

    call = raw if side == "raw" else ours
    for _ in range(WARM_UP):
        await call()
    gc.freeze()
    for _ in range(count):
        await call()


def instructions(side: str, stream: bool, count: int, recording: Path) -> int:
    """Instructions of a whole process making ``count`` calls (callgrind's total)."""
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, __file__, "--measure", side, str(count), str(recording),
    ] + (["--stream"] if stream else [])  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True).stderr
    return int(re.search(r"Collected : (\d+)", out).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--chunks", type=int, default=500)
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--stream", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        side, count, recording = args.measure
        recorded = json.loads(Path(recording).read_text())
        return asyncio.run(calls(side, args.stream, int(count), recorded))
    if shutil.which("valgrind") is None:
        sys.exit("bench/instructions.py needs valgrind: apt-get install valgrind")
    recording = Path(f"/tmp/victor-bench-{args.chunks}.json")
    with serving("anthropic", args.chunks) as url:
        recording.write_text(json.dumps(record(url)))
    print("CPU instructions per call (callgrind), the Anthropic SDK replayed in-process:")
    measures = ((False, "(a) run vs create", 1), (True, "(b) astream vs stream", args.chunks))
    for stream, label, per in measures:
        n = args.calls if stream else 20 * args.calls
        jobs = [(side, made) for side in ("raw", "victor") for made in (0, n)]

        def count(job: tuple[str, int], stream: bool = stream) -> int:
            return instructions(job[0], stream, job[1], recording)

        with ThreadPoolExecutor(2) as pool:  # valgrind is single-threaded: two at a time
            totals = dict(zip(jobs, pool.map(count, jobs), strict=True))
        raw, ours = ((totals[side, n] - totals[side, 0]) / n for side in ("raw", "victor"))
        unit = "call" if per == 1 else "chunk"
        print(
            f"  {label:<24} raw {raw / 1e6:8.3f} M  victor {ours / 1e6:8.3f} M  "
            f"added {(ours - raw) / per / 1e3:+8.2f} K/{unit}  ratio {ours / raw:5.3f}"
        )


if __name__ == "__main__":
    main()
