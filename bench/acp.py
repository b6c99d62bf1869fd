"""What ACP adds: ``victor acp`` driven by the ACP SDK's client over stdio, against
in-process ``astream`` on the same loopback model server. Not a test; prints medians and
ratios (target: the stream after the first text within 1.10 times in-process, per chunk).

    python bench/acp.py [--chunks 500] [--rounds 30]

Three processes: the Anthropic protocol server (``bench/serve.py``), the ACP agent (``python
-m victor acp``, started by the SDK's ``spawn_agent_process`` as an editor starts it) and
the client here. (a0) is the floor under (a): the same agent's text, sent as the same
``agent_message_chunk`` updates through the same SDK over stdio, by a bare ACP agent (this
script with ``--floor``: no sessions' workspaces, tools, approval, plans or usage). What (a)
adds over (a0) is what victor's ACP layer costs; what (a0) adds over in-process is the
protocol's (JSON-RPC per chunk, a pipe, the client's parsing) and the machine's.

The three take turns within each round. Each is split into the time to the first text (a
prompt's round trip, the run's start) and the stream after it (what each chunk costs).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from overhead import WARM_UP  # bench/ is on sys.path when a script here runs
from serve import serving

HERE = Path(__file__).resolve().parent
# This file is acp.py: for `import acp`, the SDK must be found, not this script.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
TASK = "Say something"

Timed = tuple[float, float]  # (whole prompt, time to the first text)


class Counting:
    """The bench's ACP client: counts the text of the prompt in progress (characters:
    victor sends the deltas that arrive during a write as one chunk)."""

    def __init__(self) -> None:
        self.chars = 0
        self.first = 0.0
        self.messages: list[int] = []  # chunks each prompt came in

    async def session_update(self, session_id: str, update: Any, **_: Any) -> None:
        if update.session_update == "agent_message_chunk":
            if not self.chars:
                self.first = time.perf_counter()
                self.messages.append(0)
            self.messages[-1] += 1
            self.chars += len(update.content.text)

    async def request_permission(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the bench's agent calls no tools")

    def on_connect(self, conn: Any) -> None:
        pass


class Over:
    """One ACP agent process and a session on it."""

    def __init__(self, command: list[str], cwd: str) -> None:
        self.command, self.cwd = command, cwd
        self.client = Counting()
        self.expected = 0

    async def __aenter__(self) -> Over:
        from acp import spawn_agent_process

        self._spawned = spawn_agent_process(
            self.client, self.command[0], *self.command[1:], env={"PYTHONPATH": str(HERE.parent)}
        )
        self.conn, _ = await self._spawned.__aenter__()
        await self.conn.initialize(protocol_version=1)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._spawned.__aexit__(*exc)

    async def prompt(self) -> Timed:
        from acp import text_block

        client = self.client
        client.chars = 0
        # A new conversation each time, as in-process: the same request to the model.
        session = (await self.conn.new_session(cwd=self.cwd)).session_id
        await asyncio.sleep(0.02)  # what a new session sends (its commands) is not the prompt's
        start = time.perf_counter()
        await self.conn.prompt(session_id=session, prompt=[text_block(TASK)])
        while client.chars < self.expected:  # the SDK hands notifications to tasks
            await asyncio.sleep(0)
        return time.perf_counter() - start, client.first - start


async def in_process(agent: Any) -> tuple[Timed, int, int]:
    """(times, chunks, characters) of one in-process stream."""
    start, first, chunks, chars = time.perf_counter(), 0.0, 0, 0
    async for text in agent.astream(TASK):
        chunks += 1
        chars += len(text)
        if chunks == 1:
            first = time.perf_counter()
    return (time.perf_counter() - start, first - start), chunks, chars


def floor(model_url: str) -> None:
    """A bare ACP agent over stdio: each prompt's text as message chunks, nothing else."""
    sys.path.insert(0, str(HERE.parent))
    from acp import PROTOCOL_VERSION, run_agent, update_agent_message_text
    from acp.schema import InitializeResponse, NewSessionResponse, PromptResponse

    from victor import Agent

    agent = Agent(provider="anthropic", base_url=model_url, api_key="bench", max_tokens=1024)

    class Bare:
        def on_connect(self, conn: Any) -> None:
            self.conn = conn

        async def initialize(self, protocol_version: int, **_: Any) -> InitializeResponse:
            return InitializeResponse(protocol_version=PROTOCOL_VERSION)

        async def new_session(self, cwd: str, **_: Any) -> NewSessionResponse:
            return NewSessionResponse(session_id="bench")

        async def prompt(self, session_id: str, prompt: list[Any], **_: Any) -> PromptResponse:
            async for text in agent.astream(prompt[0].text):
                await self.conn.session_update(session_id, update_agent_message_text(text))
            return PromptResponse(stop_reason="end_turn")

    asyncio.run(run_agent(Bare()))


def report(label: str, inside: list[Timed], runs: list[Timed], chunks: int) -> None:
    first_in = statistics.median(t[1] for t in inside)
    rest_in = statistics.median(t[0] - t[1] for t in inside)
    first, rest = (
        statistics.median(t[1] for t in runs),
        statistics.median(t[0] - t[1] for t in runs),
    )
    paired = statistics.median(
        (o[0] - o[1]) / (i[0] - i[1]) for i, o in zip(inside, runs, strict=True)
    )
    print(f"  {label}")
    print(
        f"      first text                 in-process {first_in * 1e3:6.2f} ms  "
        f"ACP {first * 1e3:6.2f} ms  (+{(first - first_in) * 1e3:.2f} ms a prompt)"
    )
    print(
        f"      the stream after it        in-process {rest_in * 1e3:6.2f} ms  "
        f"ACP {rest * 1e3:6.2f} ms  ratio {rest / rest_in:5.3f} (paired {paired:5.3f})  "
        f"(+{(rest - rest_in) / chunks * 1e6:.2f} µs/chunk)"
    )


async def bench(args: argparse.Namespace) -> None:
    from victor import Agent

    with serving("anthropic", args.chunks) as model_url, tempfile.TemporaryDirectory() as cwd:
        app = Path(cwd, "app.py")
        app.write_text(
            "from victor import Agent\n"
            f"agent = Agent(provider='anthropic', base_url={model_url!r}, api_key='bench', "
            "max_tokens=1024)\n"
        )
        agent = Agent(provider="anthropic", base_url=model_url, api_key="bench", max_tokens=1024)
        victor = [sys.executable, "-m", "victor", "acp", str(app)]
        bare = [sys.executable, __file__, "--floor", model_url]
        async with Over(victor, cwd) as ours, Over(bare, cwd) as under:
            _, chunks, ours.expected = await in_process(agent)
            under.expected = ours.expected
            calls = {"in": lambda: in_process(agent), "acp": ours.prompt, "floor": under.prompt}
            times: dict[str, list[Timed]] = {name: [] for name in calls}
            for _ in range(WARM_UP):
                for call in calls.values():
                    await call()
            names = list(calls)
            for i in range(args.rounds):
                for name in names[i % 3 :] + names[: i % 3]:
                    timed = await calls[name]()
                    times[name].append(timed[0] if name == "in" else timed)  # type: ignore[arg-type]
        await agent.cleanup()
    print(
        f"victor acp over stdio vs in-process astream ({chunks}-chunk answer, {args.rounds} rounds)"
    )
    report("(a) victor acp, the SDK's client", times["in"], times["acp"], chunks)
    print(
        f"      {statistics.median(ours.client.messages):.0f} message chunks a prompt "
        f"(deltas written while one is under way go as one)"
    )
    report("(a0) bare ACP agent on the SDK", times["in"], times["floor"], chunks)
    ours_rest = statistics.median(t[0] - t[1] for t in times["acp"])
    floor_rest = statistics.median(t[0] - t[1] for t in times["floor"])
    print(
        f"  victor's ACP layer over the floor: {(ours_rest - floor_rest) / chunks * 1e6:+.2f} "
        f"µs/chunk, ratio {ours_rest / floor_rest:5.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--floor", metavar="MODEL_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        return floor(args.floor)
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
