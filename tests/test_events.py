"""EventBus: class-level default bus, wildcards, sync/async handlers, failures, scoping."""

from __future__ import annotations

import asyncio
import logging

from victor.core.events import EVENT_TYPES, EventBus


async def test_class_level_subscribe_emit_unsubscribe():
    seen = []
    EventBus.subscribe("tool.execution", seen.append)
    EventBus.emit("tool.execution", {"tool_name": "x", "result": "ok"})
    EventBus.unsubscribe("tool.execution", seen.append)
    EventBus.emit("tool.execution", {"tool_name": "y"})
    assert [e.data["tool_name"] for e in seen] == ["x"]
    assert seen[0].timestamp > 0 and seen[0].id.startswith("evt_")


async def test_wildcards():
    tools, everything = [], []
    EventBus.subscribe("tool.*", tools.append)
    EventBus.subscribe("*", everything.append)
    for name in ("tool.execution", "tool.error", "agent.start"):
        EventBus.emit(name)
    assert [e.type for e in tools] == ["tool.execution", "tool.error"]
    assert len(everything) == 3


async def test_async_handlers_are_awaited_by_aemit_and_scheduled_by_emit():
    seen = []

    async def handler(event):
        await asyncio.sleep(0)
        seen.append(event.type)

    bus = EventBus()
    bus.subscribe("a", handler)
    await bus.aemit("a")
    assert seen == ["a"]
    bus.emit("a")  # scheduled on the running loop
    await asyncio.sleep(0.01)
    assert seen == ["a", "a"]


async def test_a_failing_handler_is_logged_and_others_still_run(caplog):
    seen = []

    def broken(event):
        raise RuntimeError("handler bug")

    EventBus.subscribe("x", broken)
    EventBus.subscribe("x", seen.append)
    with caplog.at_level(logging.ERROR, logger="victor.events"):
        await EventBus.default().aemit("x")
        EventBus.emit("x")
    assert len(seen) == 2
    assert "handler bug" in caplog.text


async def test_child_bus_forwards_to_parent():
    parent_seen, child_seen = [], []
    child = EventBus(parent=EventBus.default())
    EventBus.subscribe("team.*", parent_seen.append)
    child.subscribe("team.*", child_seen.append)
    child.emit("team.start", {"team": "t"})
    EventBus.emit("team.complete")
    assert [e.type for e in parent_seen] == ["team.start", "team.complete"]
    assert [e.type for e in child_seen] == ["team.start"]


async def test_no_listeners_means_no_event_object():
    bus = EventBus()
    assert bus.emit("agent.token", {"text": "x"}) is None
    assert not bus.has_listeners("agent.token")


def test_emit_without_a_running_loop_runs_async_handlers():
    seen = []

    async def handler(event):
        seen.append(event.type)

    bus = EventBus()
    bus.subscribe("*", handler)
    bus.emit("sync.caller")
    assert seen == ["sync.caller"]


def test_seed_event_table_is_covered():
    for name in (
        "agent.start",
        "agent.complete",
        "agent.error",
        "tool.execution",
        "tool.error",
        "provider.request",
        "provider.response",
        "provider.error",
    ):
        assert name in EVENT_TYPES
