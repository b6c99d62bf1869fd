"""One secret scrubber (victor._secrets) on every way out: the same secret-shaped values,
put into a log line, an exception, an HTTP problem of `victor serve` and a span, come out
masked in all four; ordinary text comes out as it went in."""

from __future__ import annotations

import json
import logging
import traceback

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
