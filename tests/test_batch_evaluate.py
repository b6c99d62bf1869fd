"""victor.evaluate: two variants over one dataset, scored by exact match, Python functions
and an LLM judge (an agent on a victor.testing provider); the table, summary and plot."""

from __future__ import annotations

import base64
import math
import re
import sys

import pytest

import victor
from tests.servers import Json
from victor import Agent, ConfigurationError, OutputValidationError
from victor.batch import Evaluation, contains, exact_match, llm_judge
from victor.batch.judge import parse_grade
from victor.testing import FunctionProvider

DATASET = [{"input": f"capital of {c}?", "expected": a} for c, a in [
    ("France", "Paris"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Japan", "Tokyo"),
]]  # fmt: skip
ANSWERS = {"France": "Paris", "Italy": "Rome", "Spain": "Barcelona", "Japan": "Tokyo"}


def answering(style):
    def reply(messages, tools):
        country = messages[-1].content.split()[-1].rstrip("?")
        return style(ANSWERS[country])

    return Agent(provider=FunctionProvider(reply))


async def test_two_variants_side_by_side(tmp_path):
    terse = answering(lambda a: f"{a}.")
    chatty = answering(lambda a: f"I believe it is {a}!")

    def short(output):  # a one-argument Python scorer
        return len(output) <= 10

    report = await victor.evaluate(
        DATASET,
        {"terse": terse, "chatty": chatty},
        [exact_match, contains, short],
        progress=False,
        checkpoint=tmp_path / "eval.jsonl",
    )
    assert isinstance(report, Evaluation) and report.variants == ["terse", "chatty"]
    means = report.means()
    assert means["terse"] == {"exact_match": 0.75, "contains": 0.75, "short": 1.0}
    assert means["chatty"] == {"exact_match": 0.0, "contains": 0.75, "short": 0.0}
    assert report.disagreements() == [0, 1, 3]  # exact_match differs except for Spain

    # Each variant kept its own checkpoint: a rerun resumes both.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval.chatty.jsonl", "eval.terse.jsonl"]
    again = await victor.evaluate(
        DATASET, {"terse": terse, "chatty": chatty}, [exact_match], progress=False,
        checkpoint=tmp_path / "eval.jsonl",
    )  # fmt: skip
    assert all(r.resumed for r in again.results["terse"])

    bundle = report._repr_mimebundle_()
    assert bundle["text/plain"].splitlines()[1].split() == [
        "terse",
        "4",
        "0",
        "0.750",
        "0.750",
        "1.000",
        "16",
    ]
    svg = _svg(bundle["text/html"])
    assert svg.startswith("<svg") and "exact_match" in svg and "chatty" in svg
    # exact_match is pass/fail: two bins; terse has 3 passes, chatty none.
    labels, counts = report.plot().counts("exact_match")
    assert labels == ["0", "1"] and counts == {"terse": [1, 3], "chatty": [4, 0]}
    with pytest.MonkeyPatch.context() as without_pandas:
        without_pandas.setitem(sys.modules, "pandas", None)
        rows = report.table()  # rows of dicts
    assert (
        rows[2]["chatty output"] == "I believe it is Barcelona!" and rows[2]["chatty error"] is None
    )

    # With pandas (in `dev`; the core suite of other Pythons lacks it), DataFrames:
    pandas = pytest.importorskip("pandas")
    table = report.table()
    assert isinstance(table, pandas.DataFrame) and len(table) == 4
    assert list(table["terse output"]) == ["Paris.", "Rome.", "Barcelona.", "Tokyo."]
    assert list(table["chatty exact_match"]) == [0.0] * 4
    assert list(table["expected"]) == ["Paris", "Rome", "Madrid", "Tokyo"]
    summary = report.summary()
    assert list(summary.index) == ["terse", "chatty"]
    assert summary.loc["terse", "exact_match"] == 0.75 and summary.loc["chatty", "failed"] == 0


async def test_an_llm_judge_grades_through_an_agent():
    asked = []

    def grade(messages, tools):
        prompt = messages[-1].content
        asked.append(prompt)
        if "Barcelona" in prompt:
            return "Barcelona is not the capital of Spain.\nGRADE: 2"
        if "Tokyo" in prompt:
            return "Hard to say."  # the judge misbehaves: that score stays empty
        return "It names the capital.\n**Grade:** 9/10"

    judge = llm_judge(Agent(provider=FunctionProvider(grade)), "Is it the right capital?")
    report = await victor.evaluate(DATASET, answering(str), [judge], progress=False, name="v1")
    scores = [row["judge"] for row in report.scores["v1"]]
    assert scores == [0.9, 0.9, 0.2, None]
    # Only the failed score is kept, with its error's type and message.
    assert list(report.score_errors["v1"]) == [3]
    error = report.score_errors["v1"][3]["judge"]
    assert error["type"] == "OutputValidationError"
    assert error["message"].startswith("the judge's reply does not end with a line 'GRADE")
    assert math.isclose(report.means()["v1"]["judge"], 2.0 / 3)
    first = asked[0]
    assert "Is it the right capital?" in first and "capital of France?" in first
    assert "Reference answer:\nParis" in first and "Answer to grade:\nParis" in first
    assert first.rstrip().endswith("GRADE: <a whole number from 0 (fails the criteria) to 10 "
                                   "(meets them fully)>")  # fmt: skip


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        # Each once made up a grade from the first digit or word it found.
        ("The answer is not correct.", None),  # was 1.0 ("correct")
        ("The answer says 7 times 8 is 54, which is wrong. Grade: 0", None),  # was 0.7
        ("The answer says 7 times 8 is 54, which is wrong.\nGrade: 0", 0.0),
        ("Question 3: what is 7 times 8?", None),  # it echoed the question: was 0.3
    ],
)
async def test_a_judge_reply_without_a_grade_line_is_a_score_error_not_a_number(reply, score):
    judge = llm_judge(Agent(provider=FunctionProvider(lambda messages, tools: reply)))
    dataset = [{"input": "What is 7 times 8?", "expected": "56"}]
    report = await victor.evaluate(dataset, answering_with("54"), [judge], progress=False)
    [variant] = report.variants
    assert report.scores[variant][0]["judge"] == score
    errors = report.score_errors[variant]
    if score is None:
        assert errors[0]["judge"]["type"] == "OutputValidationError"
        assert repr(reply[-40:])[1:-1] in errors[0]["judge"]["message"]
    else:
        assert errors == {}


async def test_a_judge_on_a_provider_holding_schemas_gives_a_typed_verdict(openai_server):
    openai_server.script(
        Json({"reason": "54 is not 7 times 8.", "grade": 0}),
        Json({"reason": "Right.", "grade": 10}),
    )
    judge_agent = await Agent.create(
        provider="openai", base_url=openai_server.url + "/v1", api_key="sk-test"
    )
    judge = llm_judge(judge_agent)
    dataset = [{"input": "What is 7 times 8?", "expected": "56"}]
    report = await victor.evaluate(
        dataset, {"wrong": answering_with("54"), "right": answering_with("56")}, [judge],
        progress=False, concurrency=1,
    )  # fmt: skip
    assert [report.scores[v][0]["judge"] for v in report.variants] == [0.0, 1.0]
    assert report.score_errors == {"wrong": {}, "right": {}}
    spec = openai_server.requests[0].body["response_format"]["json_schema"]
    assert spec["name"] == "Verdict" and spec["strict"] is True
    assert spec["schema"]["properties"]["grade"]["enum"] == list(range(11))
    assert "GRADE:" not in openai_server.requests[0].body["messages"][-1]["content"]
    await judge_agent.cleanup()


def answering_with(answer):
    return Agent(provider=FunctionProvider(lambda messages, tools: answer))


async def test_a_failed_item_scores_zero_and_a_failing_scorer_is_reported():
    def reply(messages, tools):
        if "Italy" in messages[-1].content:
            raise RuntimeError("model down")
        return "Paris"

    def explodes(output, expected, item):
        if item["expected"] == "Paris":
            raise KeyError("oops")
        return 1

    agent = Agent(provider=FunctionProvider(reply))
    report = await victor.evaluate(
        DATASET, agent, {"em": exact_match, "x": explodes}, progress=False
    )
    rows = report.scores[report.variants[0]]
    assert [row["em"] for row in rows] == [1.0, 0.0, 0.0, 0.0]
    assert rows[1]["x"] == 0.0  # the failed item: 0 for every scorer
    assert rows[0]["x"] is None
    errors = report.score_errors[report.variants[0]]
    assert errors == {0: {"x": {"type": "KeyError", "message": "'oops'"}}}
    assert report.results[report.variants[0]].summary.failed == 1


async def test_bad_scorers_are_reported_up_front():
    agent = answering(str)
    with pytest.raises(ConfigurationError, match="two scorers are named 'exact_match'"):
        await victor.evaluate(DATASET, agent, [exact_match, exact_match], progress=False)
    with pytest.raises(ConfigurationError, match="scorers is empty"):
        await victor.evaluate(DATASET, agent, [], progress=False)
    report = await victor.evaluate(DATASET, agent, {"bad": lambda o: "yes"}, progress=False)
    assert report.scores[report.variants[0]][0]["bad"] is None
    error = report.score_errors[report.variants[0]][0]["bad"]
    assert error["type"] == "TypeError" and "return a bool or a number" in error["message"]


def test_a_grade_is_read_only_from_the_last_line():
    assert parse_grade("Right city.\nGRADE: 8") == 0.8
    assert parse_grade("Perfect.\n\n**Grade:** 10/10.\n") == 1.0
    assert parse_grade("Mostly right.\ngrade: 7.5") == 0.75
    for reply in ("8", "GRADE: 8\nthough it could be better", "PASS", "GRADE: 11", "hmm", ""):
        with pytest.raises(OutputValidationError, match="does not end with a line 'GRADE"):
            parse_grade(reply)


def _svg(html: str) -> str:
    data = re.search(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", html).group(1)
    return base64.b64decode(data).decode()
