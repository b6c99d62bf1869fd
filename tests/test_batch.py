"""victor.batch on the local backend, through the public API with victor.testing providers
and a protocol server: order, limits, retries, timeouts, cancellation, checkpoints (a killed
process resumed), progress, events, the CLI."""

from __future__ import annotations

import asyncio
import datetime
import enum
import inspect
import json
import os
import pydoc
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import victor
from tests.servers import Slow, Status, Text
from tests.timing import PROMPTLY, STALL, Rendezvous
from victor import Agent, AgentTeam, ConfigurationError, ProviderError, VictorError
from victor.batch import Batch, BatchResult
from victor.batch.checkpoint import Checkpoint
from victor.cli import main as cli
from victor.core.events import EventBus
from victor.testing import FunctionProvider

ROOT = Path(__file__).resolve().parent.parent


def question(messages) -> str:
    return messages[-1].content


def shouting(delay_for=lambda q: 0.0):
    """An agent answering each task in capitals, after ``delay_for(task)`` seconds."""

    async def reply(messages, tools):
        await asyncio.sleep(delay_for(question(messages)))
        return question(messages).upper()

    return Agent(provider=FunctionProvider(reply), name="shout")


async def test_await_gives_every_result_in_input_order():
    items = [f"item {i}" for i in range(30)]
    # Later items finish first: the order of the list must not come from finishing order.
    agent = shouting(lambda q: (30 - int(q.split()[1])) / 1000)
    results = await victor.batch(items, agent, concurrency=10, progress=False)
    assert [r.output for r in results] == [i.upper() for i in items]
    assert [r.index for r in results] == list(range(30))
    assert all(r.ok and r.error is None and r.attempts == 1 for r in results)
    assert [r.item for r in results] == items
    assert results.summary.ok == 30 and results.summary.failed == 0
    # Usage per item is what the provider reported for that item's run.
    assert all(r.usage.input_tokens == 2 and r.usage.output_tokens == 2 for r in results)
    assert results.usage.total_tokens == 120


async def test_async_for_yields_each_result_as_it_finishes():
    items = [f"item {i}" for i in range(12)]
    seen = []
    async for result in victor.batch(items, shouting(), concurrency=3, progress=False):
        assert isinstance(result, BatchResult)
        seen.append(result.index)
    assert sorted(seen) == list(range(12))


async def test_never_more_than_concurrency_items_in_flight():
    in_flight = 0
    peak = 0
    meeting = Rendezvous(4)  # the first four meet: the limit is reached, not just respected

    async def reply(messages, tools):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            if meeting.arrived < 4:
                await meeting.meet()
            await asyncio.sleep(0.001)
            return "ok"
        finally:
            in_flight -= 1

    agent = Agent(provider=FunctionProvider(reply))
    results = await victor.batch(range(40), agent, prompt="n={item}", concurrency=4, progress=False)
    assert peak == 4
    assert len(results) == 40 and all(r.ok for r in results)


async def test_a_failed_item_is_a_result_not_an_exception():
    def reply(messages, tools):
        if "3" in question(messages):
            raise ProviderError("overloaded", provider="function", status=529)
        return "fine"

    agent = Agent(provider=FunctionProvider(reply, max_retries=0))
    results = await victor.batch([f"q{i}" for i in range(20)], agent, progress=False)
    failed = results.failed
    assert [r.index for r in failed] == [3, 13]
    assert all(r.error_type == "ProviderError" and "overloaded" in r.error for r in failed)
    assert all(r.output is None and not r.ok for r in failed)
    assert results.summary.errors == Counter({"ProviderError": 2})
    assert results.outputs.count("fine") == 18
    assert "18 ok · 2 failed (ProviderError 2)" in str(results.summary)


async def test_retries_try_again_until_an_attempt_works():
    attempts = Counter()

    def reply(messages, tools):
        task = question(messages)
        attempts[task] += 1
        if attempts[task] <= int(task.split(":")[1]):  # "item:N" fails N times
            raise RuntimeError(f"flaky {task}")
        return "done"

    agent = Agent(provider=FunctionProvider(reply))
    items = ["a:0", "b:1", "c:2", "d:5"]
    results = await victor.batch(items, agent, retries=2, retry_delay=0, progress=False)
    assert [r.attempts for r in results] == [1, 2, 3, 3]
    assert [r.ok for r in results] == [True, True, True, False]
    assert results[3].error == "flaky d:5" and results[3].error_type == "RuntimeError"
    assert attempts["d:5"] == 3


async def test_a_configuration_error_is_not_retried():
    calls = 0

    def reply(messages, tools):
        nonlocal calls
        calls += 1
        raise ConfigurationError("no key")

    agent = Agent(provider=FunctionProvider(reply))
    results = await victor.batch(["x"], agent, retries=3, retry_delay=0, progress=False)
    assert (calls, results[0].attempts, results[0].error_type) == (1, 1, "ConfigurationError")


async def test_timeout_stops_an_attempt_and_the_others_go_on():
    cancelled = []

    async def reply(messages, tools):
        if question(messages) == "slow":
            try:
                await asyncio.sleep(STALL)
            except asyncio.CancelledError:
                cancelled.append(True)
                raise
        return "quick"

    agent = Agent(provider=FunctionProvider(reply))
    # 1.5 s: the quick items take milliseconds (a loaded machine keeps far under 1.5 s);
    # the slow one would stall for STALL s. Two attempts: the test waits 3 s.
    run = victor.batch(["a", "slow", "b"], agent, timeout=1.5, retries=1, retry_delay=0)
    results = await asyncio.wait_for(run, 3 + PROMPTLY)  # well before the stall would end
    assert [r.ok for r in results] == [True, False, True]
    slow = results[1]
    assert slow.error_type == "TimeoutError"
    assert slow.error == "the item took longer than timeout=1.5 s"
    assert slow.attempts == 2 and cancelled == [True, True]  # each attempt was stopped


async def test_cancelling_the_batch_cancels_the_items_in_flight(tmp_path):
    started = asyncio.Event()
    running, stopped = [], []

    async def reply(messages, tools):
        task = question(messages)
        if task.startswith("quick"):
            return "done"
        running.append(task)
        if len(running) == 3:
            started.set()
        try:
            await asyncio.sleep(STALL)
        except asyncio.CancelledError:
            stopped.append(task)
            raise
        return "late"

    agent = Agent(provider=FunctionProvider(reply))
    items = ["quick 1", "quick 2", "slow 1", "slow 2", "slow 3", "slow 4", "slow 5"]
    job = victor.batch(items, agent, concurrency=3, checkpoint=tmp_path / "log.jsonl")

    async def run():
        return await job

    with EventBus.capture("batch.*") as events:
        task = asyncio.ensure_future(run())
        await asyncio.wait_for(started.wait(), PROMPTLY)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sorted(stopped) == sorted(running) == ["slow 1", "slow 2", "slow 3"]
    # What finished is kept: in the results and in the checkpoint; nothing else ran.
    assert [(r.index, r.output) for r in job.results] == [(0, "done"), (1, "done")]
    assert len(Checkpoint(tmp_path / "log.jsonl").read()) == 2
    assert job.results.summary.status == "interrupted"
    assert [e.type for e in events][-1] == "batch.error"
    assert events[-1].data["error_type"] == "CancelledError"


async def test_checkpoint_resumes_only_what_is_not_done(tmp_path):
    path = tmp_path / "answers.jsonl"
    calls = []
    broken = {"q2", "q5"}

    def reply(messages, tools):
        calls.append(question(messages))
        if question(messages) in broken:
            raise RuntimeError("down")
        return question(messages) + "!"

    agent = Agent(provider=FunctionProvider(reply))
    items = [f"q{i}" for i in range(8)]
    first = await victor.batch(items, agent, checkpoint=path, progress=False)
    assert [r.index for r in first.failed] == [2, 5]
    assert len(path.read_text().splitlines()) == 8  # one line per finished item

    broken.clear()
    calls.clear()
    second = await victor.batch(items, agent, checkpoint=path, progress=False)
    assert sorted(calls) == ["q2", "q5"]  # the others were read back, not run
    assert [r.output for r in second] == [f"q{i}!" for i in range(8)]
    assert [r.resumed for r in second] == [True, True, False, True, True, False, True, True]
    assert second.summary.resumed == 6 and second.summary.ok == 8
    assert second[0].usage == first[0].usage  # usage survives the round trip
    # The log keeps the failure and the retry; the latest line of a key wins.
    assert len(path.read_text().splitlines()) == 10
    assert all(r["error"] is None for r in Checkpoint(path).read().values())

    calls.clear()
    third = await victor.batch(items, agent, checkpoint=path, progress=False)
    assert calls == [] and all(r.resumed for r in third)


async def test_checkpoint_keys_follow_the_items_not_their_positions(tmp_path):
    path = tmp_path / "log.jsonl"
    calls = []

    def reply(messages, tools):
        calls.append(question(messages))
        return "ok"

    agent = Agent(provider=FunctionProvider(reply))
    await victor.batch(["a", "b", "a"], agent, checkpoint=path, progress=False)
    assert sorted(calls) == ["a", "a", "b"]  # identical items still run once each
    calls.clear()
    results = await victor.batch(["new", "a", "b", "a", "a"], agent, checkpoint=path)
    assert sorted(calls) == ["a", "new"]  # the third "a" is new; the rest moved but are done
    assert [r.resumed for r in results] == [False, True, True, True, False]

    by_id = [{"id": 1, "task": "one"}, {"id": 2, "task": "two"}]
    path2 = tmp_path / "ids.jsonl"
    await victor.batch(by_id, agent, checkpoint=path2, key=lambda item: item["id"])
    assert sorted(Checkpoint(path2).read()) == ["1", "2"]
    with pytest.raises(ConfigurationError, match="key= gives '1' for items 0 and 1"):
        victor.batch(by_id, agent, key=lambda item: 1)


def test_batch_takes_the_batch_parameters_declared_once():
    # batch() forwards to Batch: help() and inspect show Batch's parameters, also for
    # victor.batch as the package (callable itself), so they cannot drift apart.
    from victor.batch.core import batch

    expected = inspect.signature(Batch).replace(return_annotation="Batch")
    assert inspect.signature(batch) == expected
    assert inspect.signature(sys.modules["victor.batch"]) == expected
    assert "concurrency: 'int' = 8" in pydoc.render_doc(batch)


def test_a_torn_last_line_is_dropped_and_garbage_is_reported(tmp_path):
    path = tmp_path / "log.jsonl"
    good = BatchResult(index=0, item="a", output="A", key="k0", attempts=1)
    log = Checkpoint(path)
    log.append(good)
    log.close()
    with open(path, "ab") as file:
        file.write(b'{"key": "k1", "output": "cut off by a cr')  # no newline: a crash mid-write
    assert list(Checkpoint(path).read()) == ["k0"]
    assert path.read_bytes().endswith(b"}\n")  # the torn line is gone, so appends start clean

    path.write_text('{"key": "k0"}\nnot json\n{"key": "k2"}\n')
    with pytest.raises(ConfigurationError, match="line 2 of the checkpoint .* is not JSON"):
        Checkpoint(path).read()


def test_a_checkpoint_keeps_times_sets_and_enums_as_json_data(tmp_path):
    # The same conversion as a typed answer served over HTTP (victor._util.jsonable).
    class Level(enum.Enum):
        HIGH = "high"

    when = datetime.datetime(2024, 5, 1, 12, 30)
    output = {"when": when, "tags": {"x"}, "level": Level.HIGH}
    log = Checkpoint(tmp_path / "log.jsonl")
    log.append(BatchResult(index=0, item=("a", 1), output=output, key="k0", attempts=1))
    log.close()
    record = Checkpoint(tmp_path / "log.jsonl").read()["k0"]
    assert record["item"] == ["a", 1]
    assert record["output"] == {"when": "2024-05-01T12:30:00", "tags": ["x"], "level": "high"}


RESUMABLE = """
import asyncio, json, os, sys
import victor
from victor import Agent
from victor.testing import FunctionProvider

calls = []

async def reply(messages, tools):
    calls.append(messages[-1].content)
    await asyncio.sleep(0.02)
    return messages[-1].content.upper()

async def main():
    agent = Agent(provider=FunctionProvider(reply))
    items = [f"item {i}" for i in range(60)]
    results = await victor.batch(items, agent, concurrency=4, checkpoint=sys.argv[1])
    print(json.dumps({
        "indexes": [r.index for r in results],
        "outputs": [r.output for r in results],
        "resumed": sum(r.resumed for r in results),
        "calls": len(calls),
    }))

asyncio.run(main())
"""


def test_a_killed_process_resumes_and_every_item_is_done_exactly_once(tmp_path):
    script = tmp_path / "resumable.py"
    script.write_text(RESUMABLE)
    log = tmp_path / "log.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(
        [sys.executable, str(script), str(log)], env=env, stdout=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + STALL
    while time.monotonic() < deadline:  # kill it once some items, not all, are written
        if log.exists() and len(log.read_bytes().splitlines()) >= 12:
            break
        assert first.poll() is None, "the batch ended before it could be killed"
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert first.returncode == -signal.SIGKILL
    done_before = len(Checkpoint(log).read())
    assert 12 <= done_before < 60

    second = subprocess.run(
        [sys.executable, str(script), str(log)], env=env, capture_output=True, text=True
    )
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert report["indexes"] == list(range(60))  # every item once, in order
    assert report["outputs"] == [f"ITEM {i}" for i in range(60)]
    assert report["resumed"] == done_before
    assert report["calls"] == 60 - done_before  # nothing done before ran again
    keys = [json.loads(line)["key"] for line in log.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 60  # each item written exactly once


async def test_items_become_tasks_by_shape_template_or_function():
    seen = []

    def reply(messages, tools):
        seen.append(question(messages))
        return "ok"

    agent = Agent(provider=FunctionProvider(reply))
    items = ["plain", {"task": "a task"}, {"input": "an input", "context": {"file": "x.py"}}]
    await victor.batch(items, agent, concurrency=1, progress=False)
    assert seen[:2] == ["plain", "a task"]
    assert seen[2].startswith("an input") and '<context name="file">' in seen[2]

    seen.clear()
    rows = [{"text": "good film", "lang": "en"}, {"text": "mauvais", "lang": "fr"}]
    await victor.batch(rows, agent, prompt="Classify ({lang}): {text}", concurrency=1)
    assert seen == ["Classify (en): good film", "Classify (fr): mauvais"]

    seen.clear()
    await victor.batch([3, 4], agent, prompt=lambda n: f"square {n}", concurrency=1)
    await victor.batch([5], agent, prompt="{item} squared")
    assert seen == ["square 3", "square 4", "5 squared"]


async def test_a_template_that_does_not_fit_fails_at_once_or_per_item():
    agent = shouting()
    with pytest.raises(ConfigurationError, match=r"names \{lang\}.*fields: item, text"):
        victor.batch([{"text": "a"}], agent, prompt="{lang}: {text}")
    with pytest.raises(ConfigurationError, match="'task' or 'input' field"):
        victor.batch([{"question": "?"}], agent)
    # Only the first item is checked up front; a later misfit is that item's failure.
    results = await victor.batch(
        [{"text": "a", "lang": "en"}, {"text": "b"}], agent, prompt="{lang}"
    )
    assert results[1].error_type == "ConfigurationError" and results[0].output == "EN"


async def test_teams_functions_and_workflows_run_per_item():
    writer = Agent(role="writer", provider=FunctionProvider(lambda m, t: "draft"))
    editor = Agent(role="editor", provider=FunctionProvider(lambda m, t: "final"))
    team = AgentTeam.pipeline([writer, editor], name="desk")
    results = await victor.batch(["story 1", "story 2"], team, progress=False)
    assert results.outputs == ["final", "final"]
    assert all(r.usage.total_tokens > 0 for r in results)  # both members' tokens counted

    async def length(item):  # any coroutine function: its return value is the output
        await asyncio.sleep(0)
        return len(item)

    assert (await victor.batch(["ab", "abc"], length)).outputs == [2, 3]
    assert (await victor.batch([1, 2], lambda n: n * 10)).outputs == [10, 20]

    made = []

    def fresh(item):  # returns an agent made for this item: it is run, then cleaned up
        agent = Agent(provider=FunctionProvider(lambda m, t: f"persona {item['who']}"))
        made.append(agent)
        return agent

    out = await victor.batch([{"who": "a", "task": "hi"}, {"who": "b", "task": "hi"}], fresh)
    assert out.outputs == ["persona a", "persona b"] and len(made) == 2

    reviewer = Agent(provider=FunctionProvider(lambda m, t: f"step {len(m)}"))
    flows = await victor.batch(
        [{"code": "x = 1"}], reviewer, workflow="code-review", progress=False
    )
    assert flows[0].ok and flows[0].output.startswith("step")
    assert set(flows[0].output.steps) >= {"understand", "review"}


async def test_events_tie_every_run_to_the_batch():
    agent = shouting()
    with EventBus.capture() as events:
        job = victor.batch(["a", "b", "c"], agent, name="shouts", progress=False)
        results = await job
    types = Counter(e.type for e in events)
    assert types["batch.start"] == types["batch.complete"] == 1
    assert types["batch.item"] == types["agent.start"] == types["agent.complete"] == 3
    starts = [e for e in events if e.type == "agent.start"]
    assert {e.parent for e in starts} == {job.run_id}
    assert all(e.run_id == job.run_id for e in events if e.type.startswith("batch."))
    complete = next(e for e in events if e.type == "batch.complete")
    assert complete.data["done"] == 3 and complete.data["usage"] == results.usage.model_dump()
    item = next(e for e in events if e.type == "batch.item")
    assert item.data["ok"] is True and item.data["batch"] == "shouts"


def test_bad_arguments_say_what_to_do():
    agent = shouting()
    cases = [
        (dict(concurrency=0), "concurrency=0 is invalid"),
        (dict(retries=-1), "retries=-1 is invalid"),
        (dict(timeout=0), "timeout=0 is invalid"),
        (dict(backend="rey"), "backend='rey' is unknown. Did you mean 'ray'?"),
        (dict(workers=2), "workers= and ray_options= apply to backend='ray'"),
    ]
    for options, message in cases:
        with pytest.raises(ConfigurationError, match=message.replace("?", r"\?")):
            victor.batch(["x"], agent, **options)
    with pytest.raises(ConfigurationError, match="items must be a list"):
        victor.batch("one string", agent)
    with pytest.raises(ConfigurationError, match="cannot run items: pass an Agent"):
        victor.batch(["x"], 42)


async def test_a_batch_runs_once():
    job = victor.batch(["x"], shouting(), progress=False)
    await job
    with pytest.raises(VictorError, match="has run already"):
        await job
    assert isinstance(job, Batch) and "items=1" in repr(job)


async def test_results_as_a_dataframe():
    pytest.importorskip("pandas")  # in `dev`; the core suite of other Pythons lacks it
    results = await victor.batch(["a", "b"], shouting(), progress=False)
    frame = results.to_pandas()
    assert list(frame["output"]) == ["A", "B"]
    assert list(frame["output_tokens"]) == [1, 1]


async def test_notebook_progress_is_throttled_and_ends_in_its_static_form(monkeypatch):
    import IPython.display

    from victor.batch import progress as progress_module

    shown = []

    class Handle:
        def update(self, bundle, raw=False):
            shown.append(bundle)

    def display(bundle, raw=False, display_id=False):
        shown.append(bundle)
        return Handle()

    monkeypatch.setattr(IPython.display, "display", display)
    monkeypatch.setattr(progress_module, "detect_target", lambda: "display")
    agent = shouting(lambda q: 0.004)
    started = time.perf_counter()
    results = await victor.batch([f"i{n}" for n in range(300)], agent, concurrency=2)
    seconds = time.perf_counter() - started
    # Throttled: about one message per interval however many items finished, plus the final;
    # measured against the run's own duration, so a busy machine that stretches it holds.
    assert 2 <= len(shown) <= seconds / progress_module.UPDATE_INTERVAL + 2
    live, final = shown[0], shown[-1]
    assert "running" in live["text/plain"] and "tokens" in live["text/plain"]
    assert final["text/plain"] == str(results.summary)
    assert final["text/plain"].startswith("shout: 300/300 done in")
    assert "<img src='data:image/svg+xml;base64," in final["text/html"]


async def test_terminal_progress(monkeypatch, capsys):
    from victor.batch import progress as progress_module

    # Not under a kernel, whatever shell an earlier test in this process left behind.
    monkeypatch.setattr(progress_module, "detect_target", lambda: "print")
    await victor.batch(["a", "b"], shouting())
    err = capsys.readouterr().err  # not a terminal: the summary line only
    assert err.startswith("shout: 2/2 done in") and err.count("\n") == 1
    await victor.batch(["a"], shouting(), progress=False)
    assert capsys.readouterr().err == ""

    monkeypatch.setattr(progress_module, "_isatty", lambda stream: True)
    seen: list[str] = []

    async def reply(messages, tools):
        # "b" waits until the bar has drawn a live line since "a" finished (one with an
        # estimate of the time left): event-driven, not a guess at how long a draw takes.
        if question(messages) == "b":
            deadline = time.monotonic() + PROMPTLY
            while "left" not in "".join(seen):
                assert time.monotonic() < deadline, f"no live line with 'left': {seen}"
                seen.append(capsys.readouterr().err)
                await asyncio.sleep(0.05)
        return question(messages).upper()

    await victor.batch(
        ["a", "b"], Agent(provider=FunctionProvider(reply), name="shout"), concurrency=1
    )
    err = "".join(seen) + capsys.readouterr().err
    assert err.startswith("\rshout: ") and "left" in err and "running" in err
    assert err.endswith("\x1b[K\n") and "2/2 done in" in err


WARNING_ABOVE_BAR = (
    r"\r(victor: )?retrying ollama \(1/2\) in 0\.0 s after HTTP 500\x1b\[K\n"  # a whole line
    r"agent: [█░]+ \d/2 · "  # then the live line again
)


@pytest.mark.parametrize("how", ["python", "cli"])
def test_retry_warnings_go_above_the_live_line(how, ollama_server, monkeypatch, capsys, tmp_path):
    import logging
    import re

    from victor.batch import progress as progress_module

    monkeypatch.setattr(progress_module, "detect_target", lambda: "print")
    monkeypatch.setattr(progress_module, "_isatty", lambda stream: True)
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)
    # The first item takes long enough for the live line to be drawn; the second is
    # refused once (a retry warning while the line is on the terminal), then answered.
    ollama_server.script(
        Slow(0.6, Text("one")), Status(500, headers={"retry-after": "0"}), Text("two")
    )
    items = tmp_path / "items.jsonl"
    items.write_text('"a"\n"b"\n')
    root = logging.getLogger()
    handlers = root.handlers[:]
    root.handlers.clear()  # a plain script: nobody has configured logging
    try:
        if how == "python":
            batch = victor.batch(["a", "b"], Agent(provider="ollama"), concurrency=1)
            assert [r.output for r in asyncio.run(batch.run())] == ["one", "two"]
            assert not logging.getLogger("victor").handlers  # only while the line is live
        else:
            assert cli(["batch", str(items), "-p", "ollama", "-c", "1"]) == 0
    finally:
        root.handlers[:] = handlers
    err = capsys.readouterr().err
    assert re.search(WARNING_ABOVE_BAR, err), repr(err)
    assert err.count("retrying") == 1


def test_the_victor_batch_command(anthropic_server, monkeypatch, tmp_path, capsys):
    from victor.batch import progress as progress_module

    # A terminal, whatever shell an earlier test in this process left behind.
    monkeypatch.setattr(progress_module, "detect_target", lambda: "print")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-batch-test")
    items = tmp_path / "items.jsonl"
    items.write_text('{"q": "one"}\n\n{"q": "two"}\n')
    anthropic_server.default_reply = Text("answer")
    code = cli(["batch", str(items), "-p", "anthropic", "--prompt", "Q: {q}", "-c", "1"])
    out, err = capsys.readouterr()
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(r["index"], r["item"], r["output"]) for r in lines] == [
        (0, {"q": "one"}, "answer"),
        (1, {"q": "two"}, "answer"),
    ]
    assert "2/2 done" in err and "sk-batch-test" not in out + err
    assert [r.body["messages"][-1]["content"] for r in anthropic_server.requests] == [
        "Q: one",
        "Q: two",
    ]

    table = tmp_path / "rows.csv"
    table.write_text("q,lang\nthree,en\nfour,fr\n")
    output = tmp_path / "out.jsonl"
    anthropic_server.script(Status(400))  # the first request fails for good
    code = cli(
        ["batch", str(table), "-p", "anthropic", "--prompt", "{q}", "-c", "1", "-o", str(output)]
    )
    assert code == 1 and capsys.readouterr().out == ""  # results went to the file
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["error_type"] for r in records] == ["ProviderError", None]
    code = cli(["batch", str(table), "-p", "anthropic", "--prompt", "{q}", "-o", str(output)])
    assert code == 0  # rerun: the failed row again, the other read back
    assert "1 resumed" in capsys.readouterr().err

    assert cli(["batch", str(tmp_path / "missing.jsonl"), "-p", "anthropic"]) == 1
    assert "cannot read the items file" in capsys.readouterr().err
    items.write_text("not json\n")
    assert cli(["batch", str(items), "-p", "anthropic"]) == 1
    assert "line 1 of" in capsys.readouterr().err


def test_victor_batch_is_a_lazy_export():
    code = "import sys, victor; print('victor.batch' in sys.modules, callable(victor.batch))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "True"]
    code = "import victor.batch, victor; print(callable(victor.batch), victor.evaluate.__name__)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["True", "evaluate"]


def test_from_sync_code_with_run_sync():
    results = victor.run_sync(victor.batch(["a", "b"], shouting(), progress=False).run())
    assert results.outputs == ["A", "B"]
