"""victor.batch(backend="ray") on a local Ray cluster (2 CPUs, started once for the module):
the same results as the local backend, events at the driver, keys through the runtime
environment, one trace across processes, and a cancelled batch stopping its actors."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="extra ray (in `dev`)")
pytest.importorskip("opentelemetry.sdk", reason="extra otel and opentelemetry-sdk (in `dev`)")

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

import victor  # noqa: E402
from tests.servers import Text  # noqa: E402
from tests.timing import PROMPTLY, STALL  # noqa: E402
from victor import Agent, telemetry  # noqa: E402
from victor.batch.ray_backend import ship  # noqa: E402
from victor.core.events import EventBus  # noqa: E402
from victor.testing import FunctionProvider  # noqa: E402

# Ray starts in seconds on two busy cores; the whole module shares one cluster.
pytestmark = pytest.mark.timeout(240)

KEY = "sk-ant-ray-" + "7" * 24


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    """A local Ray cluster whose session and token files live in a temporary directory."""
    home = tempfile.mkdtemp(prefix="vray")  # short: Ray's socket paths have a length limit
    token = Path(home, "auth_token")
    token.write_text(secrets.token_hex(16))
    saved = {
        name: os.environ.get(name) for name in ("RAY_AUTH_TOKEN_PATH", "RAY_USAGE_STATS_ENABLED")
    }
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(token)  # not ~/.ray/auth_token
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    settings = dict(
        num_cpus=2,
        include_dashboard=False,
        _temp_dir=str(Path(home, "session")),
        object_store_memory=80 * 1024 * 1024,
        log_to_driver=False,
        # No idle workers at start: they would compete with Ray's own processes for the CPUs.
        _system_config={"enable_worker_prestart": False, "prestart_worker_first_driver": False},
    )
    try:
        try:
            ray.init(**settings)
        except Exception as exc:  # noqa: BLE001
            # Ray gives its raylet a fixed 30 s to register; on two busy cores that can pass.
            if "timed out during startup" not in str(exc):
                raise
            ray.shutdown()
            ray.init(**settings)
        yield
    finally:
        ray.shutdown()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(home, ignore_errors=True)


def capitals(messages, tools):
    """A deterministic model: the task in capitals (module level: actors import it)."""
    return messages[-1].content.upper()


async def test_the_same_results_as_the_local_backend_and_events_at_the_driver():
    agent = Agent(provider=FunctionProvider(capitals), name="caps")

    async def answer_and_where(item):  # a closure over the agent: shipped with it
        return await agent.run(item), os.getpid()

    items = [f"item {i}" for i in range(24)]
    local = await victor.batch(items, answer_and_where, progress=False)
    with EventBus.capture() as events:
        job = victor.batch(items, answer_and_where, backend="ray", workers=2, concurrency=6)
        remote = await job
    assert [r.output[0] for r in remote] == [r.output[0] for r in local]
    assert [r.output[0] for r in remote] == [i.upper() for i in items]
    assert [r.usage for r in remote] == [r.usage for r in local]
    assert {r.output[1] for r in local} == {os.getpid()}
    where = {r.output[1] for r in remote}
    assert len(where) == 2 and os.getpid() not in where  # two actor processes did the work

    # The actors' events reached the driver's bus, tied to the batch; tokens were counted.
    starts = [e for e in events if e.type == "agent.start"]
    assert len(starts) == 24 and {e.parent for e in starts} == {job.run_id}
    assert sum(e.type == "provider.response" for e in events) == 24
    assert sum(e.type == "batch.item" for e in events) == 24
    assert remote.summary.usage == local.summary.usage
    assert job.progress.token_count == remote.usage.total_tokens
    assert all(not r.resumed and r.ok for r in remote)


async def test_keys_travel_in_the_environment_and_the_trace_crosses_into_actors(
    anthropic_server, tmp_path
):
    anthropic_server.default_reply = Text("Paris")
    agent = Agent(provider="anthropic", api_key=KEY, base_url=anthropic_server.url, name="geo")
    blob, keys = ship(agent)
    assert KEY.encode() not in blob and keys == {"ANTHROPIC_API_KEY": KEY}

    async def answer_in_trace(item):
        answer = await agent.run(item)
        return answer, trace.get_current_span().get_span_context().trace_id

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.instrument(tracer_provider=provider)
    try:
        log = tmp_path / "log.jsonl"
        job = victor.batch(
            ["capital of France?"] * 3, answer_in_trace, backend="ray", workers=1, checkpoint=log
        )
        results = await job
    finally:
        telemetry.uninstrument()
    assert [r.output[0] for r in results] == ["Paris"] * 3, results.failed
    # The key reached the actor (the server saw it) without being pickled or written down.
    sent = [
        r.headers.get("x-api-key", "") + r.headers.get("authorization", "")
        for r in anthropic_server.requests
    ]
    assert len(sent) == 3 and all(KEY in credentials for credentials in sent)
    assert KEY not in log.read_text() and KEY not in repr(results)

    spans = exporter.get_finished_spans()
    (batch_span,) = [s for s in spans if s.name.startswith("batch ")]
    runs = [s for s in spans if s.name == "invoke_agent geo"]
    # Each item's run is a trace of its own, linked to the batch's, as on one machine.
    assert len(runs) == 3 and all(r.parent is None for r in runs)
    assert all([link.context for link in r.links] == [batch_span.context] for r in runs)
    chats = [s for s in spans if s.name.startswith("chat ")]
    assert len(chats) == 3 and all(c.kind == trace.SpanKind.CLIENT for c in chats)
    assert {c.context.trace_id for c in chats} == {r.context.trace_id for r in runs}
    # Code in the actors ran inside the driver's trace (the batch's).
    assert {r.output[1] for r in results} == {batch_span.context.trace_id}


async def test_cancelling_the_batch_cancels_the_items_and_stops_the_actors(tmp_path):
    marks = str(tmp_path)

    async def wait_forever(item):
        Path(marks, f"started-{item}").write_text(str(os.getpid()))
        try:
            await asyncio.sleep(STALL)
        except asyncio.CancelledError:
            Path(marks, f"cancelled-{item}").write_text("")
            raise

    job = victor.batch(range(8), wait_forever, backend="ray", workers=2, concurrency=4)

    async def run():
        return await job

    task = asyncio.ensure_future(run())
    started = lambda: sorted(p.name for p in tmp_path.glob("started-*"))  # noqa: E731
    for _ in range(int(STALL / 0.05)):  # actors take seconds to start on a busy machine
        if len(started()) == 4:
            break
        await asyncio.sleep(0.05)
    assert len(started()) == 4  # the concurrency limit holds across actors
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    cancelled = sorted(p.name.replace("cancelled", "started") for p in tmp_path.glob("cancelled-*"))
    assert cancelled == started()  # each remote item saw the cancellation
    assert job.results == [] and job.results.summary.status == "interrupted"

    pids = {int(p.read_text()) for p in tmp_path.glob("started-*")}
    assert len(pids) == 2
    for _ in range(int(PROMPTLY / 0.05)):
        if not any(_alive(pid) for pid in pids):
            break
        await asyncio.sleep(0.05)
    assert not any(_alive(pid) for pid in pids)  # the actor processes are gone


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"  # a zombie has exited already


async def test_shipping_leaves_out_keys_connections_and_loaded_models():
    import pickle
    import threading

    remote = Agent(provider="anthropic", api_key=KEY, base_url="http://127.0.0.1:9")
    remote.provider.client()  # a live SDK client for this loop: not for another process
    local = Agent(provider="local", name="embedded")
    blob, keys = ship([remote, local])
    assert KEY.encode() not in blob and keys == {"ANTHROPIC_API_KEY": KEY}
    shipped_remote, shipped_local = pickle.loads(blob)
    assert shipped_remote.provider._api_key is None and len(shipped_remote.provider._clients) == 0
    assert shipped_remote.provider.base_url == "http://127.0.0.1:9"
    assert shipped_remote.bus is EventBus.default()  # the receiving process's own bus
    # The local model is loaded by the receiving process, once, on first use.
    assert shipped_local.provider._shared is None and shipped_local.provider._release is None
    assert isinstance(shipped_local.provider._loading, type(threading.Lock()))
    assert shipped_local.provider.load_settings == local.provider.load_settings
