"""One secret scrubber (victor._secrets) on every way out: the same secret-shaped values,
put into a log line, an exception, an HTTP problem of `victor serve` and a span, come out
masked in all four; ordinary text comes out as it went in."""

from __future__ import annotations

import contextlib
import json
import logging
import traceback
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.servers import Status
from tests.timing import STALL
from victor import Agent, ConfigurationError, ProviderError
from victor._secrets import scrub
from victor.core.events import EventBus
from victor.serve import ServeSettings, start
from victor.testing import FunctionProvider

ANTHROPIC_KEY = "sk-ant-api03-Qm9yTm90VG9CZVNlZW4tMDEyMzQ1Njc4OQ"
OPENAI_KEY = "sk-proj-T3BlbkFJ-not-a-real-key-0123456789"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ2aWN0b3IifQ.c2lnbmF0dXJlLW9mLWEtdG9rZW4"
QUERY_KEY = "q9w8e7r6t5y4u3i2"
PASSWORD = "correct-horse-battery"
DB_PASSWORD = "s3cret-db-pass"
#: In a variable whose name says secret, and shaped like nothing in particular.
ENV_VALUE = "shapeless-env-value-93"
#: Given in code (api_key=), shaped like nothing in particular.
GIVEN_KEY = "shapeless-given-key-7Q2"
SECRETS = [ANTHROPIC_KEY, OPENAI_KEY, JWT, QUERY_KEY, PASSWORD, DB_PASSWORD, ENV_VALUE, GIVEN_KEY]

TEXT = (
    f"anthropic {ANTHROPIC_KEY} openai {OPENAI_KEY} header Authorization: Bearer {JWT} "
    f"url https://api.example.com/v1/models?api_key={QUERY_KEY}&limit=5 "
    f'body {{"password": "{PASSWORD}"}} db postgres://victor:{DB_PASSWORD}@db.internal/app '
    f"env {ENV_VALUE} given {GIVEN_KEY}"
)


def assert_masked(text: str) -> None:
    """No secret in ``text``, and the labels around them still there (so the text did
    reach this output: it was masked, not lost)."""
    assert [secret for secret in SECRETS if secret in text] == [], text
    for kept in ("Bearer ***", "api_key=***&limit=5", '"password": "***"', "victor:***@db"):
        assert kept in text, text
    assert text.count("***") >= len(SECRETS), text


@pytest.fixture
def traces():
    pytest.importorskip("opentelemetry.sdk", reason="extra otel and opentelemetry-sdk (in `dev`)")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from victor import telemetry

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.instrument(tracer_provider=provider, capture_content=True)
    yield exporter
    telemetry.uninstrument()


async def test_the_same_secrets_are_masked_in_logs_errors_http_problems_and_spans(
    monkeypatch, caplog, anthropic_server, traces
):
    monkeypatch.setenv("ACME_SERVICE_TOKEN", ENV_VALUE)
    # A key given in code is masked everywhere from then on, as keys in variables are.
    remote = Agent(provider="anthropic", base_url=anthropic_server.url, api_key=GIVEN_KEY)
    echo = FunctionProvider(lambda messages, tools: f"you said: {messages[-1].content}")

    # 1. A log line: an event handler fails with the text in its exception; victor logs
    #    the failure with its traceback.
    def failing_handler(event):
        raise RuntimeError(TEXT)

    EventBus.default().subscribe("agent.start", failing_handler)
    with caplog.at_level(logging.ERROR, logger="victor"):
        await Agent(provider=echo, name="echo").run(TEXT)
    EventBus.default().unsubscribe("agent.start", failing_handler)
    assert "event handler" in caplog.text and "RuntimeError" in caplog.text
    assert_masked(caplog.text)

    # 2. A span: the same run, traced with message content on.
    (span,) = [s for s in traces.get_finished_spans() if s.name == "invoke_agent echo"]
    recorded = json.dumps(dict(span.attributes))
    assert [secret for secret in SECRETS if secret in recorded] == []
    (message,) = json.loads(span.attributes["gen_ai.input.messages"])
    assert_masked(message["parts"][0]["content"])

    # 3. Exceptions: a server's error that echoes the text (the SDK's error, chained to
    #    victor's, is printed in tracebacks too), and a bad value quoted in a message.
    echoed = {"type": "error", "error": {"type": "invalid_request_error", "message": TEXT}}
    anthropic_server.script(Status(400, body=echoed))
    with pytest.raises(ProviderError) as failed:
        await remote.run("hi")
    assert_masked(str(failed.value))
    assert failed.value.__cause__ is not None
    assert_masked("".join(traceback.format_exception(failed.value)))
    with pytest.raises(ConfigurationError) as refused:
        Agent(provider="anthropic", temperature=TEXT)
    assert_masked(str(refused.value))

    # 4. An HTTP problem of `victor serve`: an unknown agent's name is quoted back.
    with start(ServeSettings(agents={"echo": Agent(provider=echo)}, mcp=False)) as server:
        response = httpx.post(
            server.url + "/v1/runs", json={"agent": TEXT, "task": "hi"}, timeout=STALL
        )
    assert response.status_code == 404
    assert [secret for secret in SECRETS if secret in response.text] == []
    assert_masked(response.json()["detail"])


@pytest.mark.parametrize(
    "text",
    [
        "The sum is 5.",
        "max_tokens=4096, input_tokens: 12345678, stop=end_turn",
        "check the ANTHROPIC_API_KEY variable or pass api_key=... to Agent.create()",
        "send 'Authorization: Bearer <token>' with every request",
        "could not reach http://127.0.0.1:8000/v1 (connection refused)",
        "a tokenizer: sentencepiece; the secret of a good prompt is brevity",
    ],
)
def test_ordinary_text_is_left_alone(text):
    assert scrub(text) == text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("hf_abcdefghijklmnopqrstuvwx", "***"),
        ("ghp_abcdefghijklmnopqrstuvwx", "***"),
        ("glpat-abcdefghijklmnopqrst", "***"),
        ("xoxb-1234567890-abcdefghij", "***"),
        ("AKIAABCDEFGHIJKLMNOP", "***"),
        ("AIzaSyA-abcdefghijklmnopqrstuvwxyz01234", "***"),
        ("X-Api-Key: abcdefghijkl", "X-Api-Key: ***"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic ***"),
        ('{"access_token": "abcdefghijkl"}', '{"access_token": "***"}'),
        ("GET /v1?key=abcdefghijkl&x=1", "GET /v1?key=***&x=1"),
        ("OPENAI_API_KEY=abcdefghijkl", "OPENAI_API_KEY=***"),
    ],
)
def test_credential_shapes_are_masked(text, masked):
    assert scrub(text) == masked


# -- the scrubber's own rules, one at a time (each killed a surviving mutant) -----------


@contextlib.contextmanager
def captured(log: logging.Logger) -> Iterator[list[logging.LogRecord]]:
    """The records ``log`` hands to its handlers (after its filters), here only."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    log.addHandler(handler)
    log.propagate = False
    try:
        yield records
    finally:
        log.removeHandler(handler)


@pytest.fixture
def given_keys(monkeypatch):
    """An empty list of keys given in code, restored afterwards."""
    from victor import _secrets

    monkeypatch.setattr(_secrets, "_given", {})
    return _secrets


def test_a_key_given_in_code_is_masked_from_eight_characters(given_keys):
    given_keys.remember("k3y-1234")  # exactly the shortest length masked
    given_keys.remember("short12")  # a flag, not a secret: left readable
    assert scrub("sent k3y-1234 and short12") == "sent *** and short12"


def test_keys_given_in_code_are_bounded_and_the_most_recent_kept(given_keys):
    first, *rest = [f"given-key-{n:04d}" for n in range(given_keys._MOST_GIVEN + 1)]
    given_keys.remember(first)
    given_keys.remember(rest[0])
    given_keys.remember(first)  # used again: now the most recent, not the oldest
    for value in rest[1:]:
        given_keys.remember(value)
    assert len(given_keys._given) == given_keys._MOST_GIVEN
    assert rest[0] not in given_keys._given  # the oldest went
    assert scrub(first) == "***" and scrub(rest[-1]) == "***"


def test_values_passed_to_secret_values_and_scrub_are_masked(given_keys):
    values = given_keys.secret_values("extra-secret-value", None, "")
    assert "extra-secret-value" in values
    assert scrub("x extra-secret-value y", values) == "x *** y"
    # Values passed in are what is masked: not a fresh look at the environment only.
    assert scrub("x other-secret-value y", ["other-secret-value"]) == "x *** y"


def test_a_secret_containing_another_is_masked_whole(monkeypatch, given_keys):
    # The shorter value sorts after the longer by length, before it alphabetically.
    monkeypatch.setenv("ACME_SHORT_TOKEN", "zzzzzzzz")
    monkeypatch.setenv("ACME_LONG_TOKEN", "abc-zzzzzzzz")
    monkeypatch.setenv("ACME_EIGHT_KEY", "12345678")
    values = given_keys.secret_values()
    assert values.index("abc-zzzzzzzz") < values.index("zzzzzzzz")  # longest first
    assert "12345678" in values
    assert scrub("token abc-zzzzzzzz end") == "token *** end"


def test_the_log_filter_masks_the_message_and_keeps_the_record(given_keys):
    given_keys.remember("logged-secret-value")
    name = f"victor.test_secrets.{uuid.uuid4().hex}"  # a new logger: none has a filter yet
    log = given_keys.get_logger(name)
    assert log.name == name
    assert log.filters.count(given_keys._filter) == 1
    given_keys.get_logger(name)  # asked twice: still one filter
    assert log.filters.count(given_keys._filter) == 1

    with captured(log) as records:
        log.warning("the key is %s", "logged-secret-value")
        log.warning("nothing secret in %s", "this line")
        log.warning("with a stack", stack_info=True)
    masked, plain, stacked = records  # none dropped
    assert masked.getMessage() == "the key is ***" and masked.args == ()
    assert plain.getMessage() == "nothing secret in this line" and plain.args == ("this line",)
    assert stacked.stack_info and "test_the_log_filter" in stacked.stack_info


def test_a_bad_format_string_is_still_logged(given_keys):
    # logging reports a bad format string itself; the filter must not drop the record.
    log = given_keys.get_logger(f"victor.test_secrets.{uuid.uuid4().hex}")
    with captured(log) as records:
        log.warning("%d items", "not a number")
    assert len(records) == 1 and records[0].msg == "%d items"


def test_the_log_filter_renders_and_masks_a_traceback_once(given_keys):
    given_keys.remember("raised-secret-value")
    log = given_keys.get_logger(f"victor.test_secrets.{uuid.uuid4().hex}")
    with captured(log) as records:
        try:
            raise RuntimeError("raised-secret-value")
        except RuntimeError:
            log.exception("failed")
        log.error("no traceback here")
    failed, plain = records
    assert "RuntimeError: ***" in failed.exc_text and "raised-secret" not in failed.exc_text
    assert plain.exc_text is None  # nothing rendered where there was no exception


def test_every_logger_of_victor_is_made_by_get_logger():
    # A logger's filters see only the records logged on it, not its children's: a module
    # that makes its own logging.getLogger("victor.x") logs unscrubbed.
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "victor"
    plain = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "getLogger"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and str(node.args[0].value).startswith("victor.")
            ):
                plain.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    assert plain == [], f"use victor._secrets.get_logger: {plain}"
