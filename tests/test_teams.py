"""AgentTeam formations through the public API, with victor.testing providers and a
protocol server: control flow, structured replies, failures, limits, events, usage."""

from __future__ import annotations

import asyncio
import json
from contextlib import aclosing

import pytest

from tests.servers import AnthropicServer, Json, Text
from tests.timing import PROMPTLY, STALL, Rendezvous
from victor import (
    Agent,
    AgentTeam,
    ConfigurationError,
    LimitExceededError,
    OutputValidationError,
    State,
)
from victor.core.events import EventBus
from victor.messages import AgentResponse
from victor.teams import NoConsensusError, StructuredOutputError, TeamError, TeamResult
from victor.testing import FunctionProvider, ScriptedProvider, call


def role_of(messages) -> str:
    system = messages[0].content if messages and messages[0].role == "system" else ""
    return system.removeprefix("Your role: ").split(".")[0]


def routed(routes, default="ok"):
    """A FunctionProvider answering by (role, words in the prompt): routes maps a role to a
    function of the user message (or a fixed reply), so concurrent members stay scripted."""

    async def reply(messages, tools):
        answer = routes.get(role_of(messages), default)
        if callable(answer):
            answer = answer(messages[-1].content)
            if asyncio.iscoroutine(answer):
                answer = await answer
        return answer

    return FunctionProvider(reply)


PLAN = {
    "subtasks": [
        {"id": 1, "assignee": "Frontend developer", "task": "Build the login form"},
        {"id": 2, "assignee": "backend developer", "task": "Build the JWT API"},
        {"id": 3, "assignee": "QA engineer", "task": "Test both", "depends_on": [1, 2]},
    ]
}


def lead_script(plan=PLAN, reviews=('{"decision": "accept"}',), answer="Registration is done."):
    reviews = list(reviews)

    def lead(prompt: str) -> str:
        if "Plan how" in prompt:
            return f"Here is my plan:\n```json\n{json.dumps(plan)}\n```"
        if "Decide" in prompt:
            return reviews.pop(0)
        return answer

    return lead


# -- members and construction ------------------------------------------------------------


async def test_role_strings_become_agents_and_take_the_team_provider():
    explicit = ScriptedProvider(["mine"])
    own = Agent(role="Backend developer", provider=explicit)
    team = AgentTeam.pipeline(["analyzer", own], provider=ScriptedProvider(["analysis"]))
    assert [m.role for m in team.members] == ["analyzer", "Backend developer"]
    result = await team.run("Build it")
    assert result.answer == "mine"
    assert explicit.requests and team.provider.requests  # each member used its own
    assert "analysis" in explicit.requests[0][-1].content  # stage 2 saw stage 1's output


async def test_a_team_provider_name_builds_the_provider_lazily():
    team = AgentTeam.flat(["a", "b"], provider="openai", model="gpt-4o-mini", api_key="sk-test")
    assert team.provider.name == "openai" and team.provider.model == "gpt-4o-mini"
    assert "sk-test" not in repr(team.provider) and "sk-test" not in repr(team)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: AgentTeam.flat(["Writer", "writer"]), "two team members are named 'writer'"),
        (
            lambda: AgentTeam.consensus(["a", "b"], min_agreement=3),
            "min_agreement=3 cannot be reached",
        ),
        (lambda: AgentTeam.debate(["a"]), "needs at least 2"),
        (lambda: AgentTeam.pipeline(["a", 3]), "member=3 is not a team member"),
        (lambda: AgentTeam.debate(["a", "b"], rounds=0), "rounds=0 is invalid"),
        (lambda: AgentTeam.flat(["a"], max_requests=0), "max_requests=0 is invalid"),
    ],
)
def test_bad_team_configuration_is_named(build, message):
    with pytest.raises(ConfigurationError, match=message):
        build()


async def test_an_empty_task_is_refused():
    team = AgentTeam.flat(["a"], provider=ScriptedProvider([]))
    with pytest.raises(ConfigurationError, match="task='  ' is empty"):
        await team.run("  ")


# -- hierarchical ------------------------------------------------------------------------


async def test_hierarchical_plans_delegates_concurrently_reviews_and_answers():
    independent = Rendezvous(2)  # subtasks 1 and 2 must be running at the same time

    def done(prompt: str) -> str:
        return "done: " + prompt.split("assigned you this subtask: ")[1].split("\n")[0]

    async def meet_then_work(prompt: str) -> str:
        await independent.meet()
        return done(prompt)

    provider = routed(
        {
            "System architect": lead_script(),
            "Frontend developer": meet_then_work,
            "Backend developer": meet_then_work,
            "QA engineer": done,
        }
    )
    team = AgentTeam.hierarchical(
        lead=Agent(role="System architect"),
        subagents=[Agent(role="Frontend developer"), "Backend developer", "QA engineer"],
        provider=provider,
    )
    with EventBus.capture("team.*") as team_events:
        result = await team.run("Implement user registration")
    assert str(result) == "Registration is done."
    assert all(turn.ok for turn in result.transcript), "1 and 2 met: they ran concurrently"
    assert [(t.agent, t.kind) for t in result.transcript] == [
        ("System architect", "plan"),
        ("Frontend developer", "subtask"),
        ("Backend developer", "subtask"),
        ("QA engineer", "subtask"),
        ("System architect", "review"),
        ("System architect", "answer"),
    ]
    assert [s["assignee"] for s in result.details["plan"]] == [
        "Frontend developer",
        "Backend developer",
        "QA engineer",
    ]
    # the dependent subtask saw its dependencies' results
    qa_prompt = [r for r in provider.requests if role_of(r) == "QA engineer"][0][-1].content
    assert "done: Build the login form" in qa_prompt and "done: Build the JWT API" in qa_prompt
    delegations = [e.data for e in team_events if e.type == "team.delegate"]
    assert [(d["from"], d["to"]) for d in delegations] == [
        ("System architect", "Frontend developer"),
        ("System architect", "Backend developer"),
        ("System architect", "QA engineer"),
    ]
    assert [e.type for e in team_events][0] == "team.start" and team_events[
        -1
    ].type == "team.complete"


async def test_the_lead_may_only_delegate_to_its_members():
    bad = {"subtasks": [{"id": 1, "assignee": "Database admin", "task": "Design tables"}]}
    good = {"subtasks": [{"id": 1, "assignee": "Backend developer", "task": "Design tables"}]}
    plans = [json.dumps(bad), json.dumps(good)]
    provider = routed(
        {
            "lead": lambda p: (
                plans.pop(0)
                if "Plan how" in p
                else ("Tables designed." if "Write the final" in p else '{"decision": "accept"}')
            ),
            "Backend developer": "tables",
        }
    )
    team = AgentTeam.hierarchical("lead", ["Backend developer"], provider=provider)
    result = await team.run("Design the schema")
    assert result.answer == "Tables designed."
    first, retry = result.transcript[0], result.transcript[1]
    assert "'Database admin' is not one of your members" in first.rejected
    lead_retry = [r for r in provider.requests if role_of(r) == "lead"][1][-1].content
    assert "could not be used: 'Database admin' is not one of your members" in lead_retry
    assert retry.rejected is None


async def test_a_plan_that_stays_malformed_is_a_clear_error():
    provider = routed({"lead": "I would rather not plan.", "dev": "x"})
    team = AgentTeam.hierarchical("lead", ["dev"], provider=provider)
    with pytest.raises(
        StructuredOutputError, match="lead did not reply with a valid plan after 2"
    ) as err:
        await team.run("Do it")
    assert err.value.result is not None and len(err.value.result.transcript) == 2


def many(n, assignee="<member role>"):
    return [{"id": i, "assignee": assignee, "task": "t", "depends_on": []} for i in range(1, n + 1)]


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        # What the embedded model wrote before plans were bounded (issue 25):
        ({"subtasks": many(57)}, "the plan has 57 subtasks; plan at most 8"),
        ({"subtasks": many(1)}, "'<member role>' is not one of your members"),
        (
            {"subtasks": [{"id": 1, "assignee": "dev", "task": "t", "depends_on": ["France"]}]},
            "subtask 1 depends on 'France', which is not an earlier subtask; depends_on lists "
            "only ids of subtasks before it (none here)",
        ),
        (
            {"subtasks": [{**many(1, "dev")[0], "depends_on": [2]}, many(2, "dev")[1]]},
            "subtask 1 depends on 2, which is not an earlier subtask",
        ),
        ({"subtasks": many(2, "dev")[:1] * 2}, "subtask ids must be unique"),
    ],
)
async def test_a_plan_out_of_bounds_is_sent_back_with_what_is_wrong(bad, says):
    good = {"subtasks": [many(1, "dev")[0], {**many(2, "dev")[1], "depends_on": [1, 1]}]}
    plans = [json.dumps(bad), json.dumps(good)]
    provider = routed(
        {
            "lead": lambda p: (
                plans.pop(0)
                if "Plan how" in p
                else ("Done." if "Write the final" in p else '{"decision": "accept"}')
            ),
            "dev": "work",
        }
    )
    team = AgentTeam.hierarchical("lead", ["dev"], provider=provider)
    result = await team.run("Do it")
    first, retry = result.transcript[0], result.transcript[1]
    assert says in first.rejected and retry.rejected is None
    assert result.details["plan"][1]["depends_on"] == ["1"]
    assert "at most 8 subtasks" in provider.requests[0][-1].content


async def test_the_plan_schema_bounds_what_a_plan_can_be(openai_server):
    # A typed plan: the schema the API holds the model to lists the members' roles, the
    # most subtasks and the ids; the plan and the review have their own token limit.
    openai_server.script(
        Json({"subtasks": [{"id": 1, "assignee": "writer", "task": "draft", "depends_on": []}]}),
        Text("a draft"),
        Json({"decision": "accept", "subtasks": [], "reason": ""}),
        Text("The article."),
    )
    team = AgentTeam.hierarchical(
        "lead",
        ["writer", Agent(name="ed", role="editor")],
        max_subtasks=3,
        plan_max_tokens=300,
        provider="openai",
        base_url=openai_server.url + "/v1",
        api_key="sk-test",
    )
    try:
        result = await team.run("Write an article")
    finally:
        await team.cleanup()
    assert result.answer == "The article."
    bodies = [r.body for r in openai_server.requests]
    assert [b["max_tokens"] for b in bodies] == [300, 4096, 300, 4096]
    plan = bodies[0]["response_format"]["json_schema"]["schema"]
    subtasks = plan["properties"]["subtasks"]
    assert (subtasks["minItems"], subtasks["maxItems"]) == (1, 3)
    subtask = plan["$defs"]["Subtask"]["properties"]
    assert subtask["assignee"]["enum"] == ["writer", "editor"]
    assert subtask["id"]["enum"] == [1, 2, 3]
    assert subtask["depends_on"]["items"]["enum"] == [1, 2]
    assert subtask["depends_on"]["maxItems"] == 2
    review = bodies[2]["response_format"]["json_schema"]["schema"]
    assert review["properties"]["subtasks"]["maxItems"] == 1
    redo = review["$defs"]["Redo"]["properties"]
    assert redo["id"]["enum"] == [1]
    assert redo["assignee"]["anyOf"][0]["enum"] == ["writer", "editor"]


CUT = '{"subtasks": [{"id": 1, "assignee": "writer", "task": "France", "depends_on": [1, 1, 1'


async def test_a_typed_plan_cut_off_by_max_tokens_says_so(openai_server):
    openai_server.script(Text(CUT, stop_reason="length"))
    team = AgentTeam.hierarchical(
        "lead",
        ["writer"],
        provider="openai",
        base_url=openai_server.url + "/v1",
        api_key="sk-test",
    )
    try:
        with pytest.raises(StructuredOutputError) as err:
            await team.run("Write an article")
    finally:
        await team.cleanup()
    message = str(err.value)
    assert message.startswith("lead's plan was cut off by max_tokens=1024 before it was complete")
    assert "depends_on" in message and "raise plan_max_tokens= (now 1024)" in message
    assert "Invalid JSON" not in message
    assert isinstance(err.value.__cause__, OutputValidationError)
    assert len(openai_server.requests) == 1  # not asked again: it would end the same way


async def test_a_plan_in_words_cut_off_by_max_tokens_says_so():
    def lead(messages, tools):
        return AgentResponse(content=CUT, stop_reason="max_tokens")

    team = AgentTeam.hierarchical(
        Agent(name="lead", provider=FunctionProvider(lead, max_tokens=200)), ["writer"]
    )
    with pytest.raises(StructuredOutputError) as err:
        await team.run("Write an article")
    # The lead's own limit is the lower one: that is the one to raise.
    assert str(err.value).startswith("lead's plan was cut off by max_tokens=200")
    assert "raise lead's max_tokens= (now 200)" in str(err.value)
    assert len(err.value.result.transcript) == 1


async def test_a_failed_member_is_reassigned_by_the_lead():
    reviews = [
        json.dumps(
            {
                "decision": "redo",
                "subtasks": [{"id": 2, "assignee": "Frontend developer", "feedback": "take over"}],
            }
        ),
        '{"decision": "accept"}',
    ]
    provider = routed(
        {
            "lead": lead_script(
                plan={
                    "subtasks": [
                        {"id": 1, "assignee": "Frontend developer", "task": "form"},
                        {"id": 2, "assignee": "Backend developer", "task": "api"},
                        {"id": 3, "assignee": "QA engineer", "task": "test", "depends_on": [2]},
                    ]
                },
                reviews=reviews,
            ),
            "Frontend developer": lambda p: "api built" if "take over" in p else "form built",
            "Backend developer": lambda p: RuntimeError("backend crashed"),
            "QA engineer": lambda p: "tested " + ("the api" if "api built" in p else "nothing"),
        }
    )
    team = AgentTeam.hierarchical(
        "lead", ["Frontend developer", "Backend developer", "QA engineer"], provider=provider
    )
    result = await team.run("Build the app")
    assert result.answer == "Registration is done."
    failed = [t for t in result.transcript if not t.ok]
    assert [(t.agent, str(t.error)) for t in failed] == [("Backend developer", "backend crashed")]
    review_prompt = [r for r in provider.requests if "Decide" in r[-1].content][0][-1].content
    assert "FAILED: backend crashed" in review_prompt
    assert result.details["replans"] == 1
    # round 2: the reassigned subtask, then the subtask that could not run without it
    assert [
        (t.agent, t.content) for t in result.transcript if t.round == 2 and t.kind == "subtask"
    ] == [
        ("Frontend developer", "api built"),
        ("QA engineer", "tested the api"),
    ]


async def test_the_lead_can_fail_the_team_with_the_members_error_attached():
    provider = routed(
        {
            "lead": lead_script(
                plan={"subtasks": [{"id": 1, "assignee": "dev", "task": "work"}]},
                reviews=['{"decision": "fail", "reason": "the only developer is down"}'],
            ),
            "dev": lambda p: ConnectionError("dev unreachable"),
        }
    )
    team = AgentTeam.hierarchical("lead", ["dev"], provider=provider)
    with pytest.raises(
        TeamError, match="the lead \\(lead\\) gave up: the only developer is down"
    ) as err:
        await team.run("Work")
    assert isinstance(err.value.errors["dev"], ConnectionError)


async def test_the_replan_limit_stops_a_lead_that_never_accepts():
    redo = '{"decision": "redo", "subtasks": [{"id": 1, "feedback": "again"}]}'
    provider = routed(
        {
            "lead": lead_script(
                plan={"subtasks": [{"id": 1, "assignee": "dev", "task": "w"}]},
                reviews=[redo] * 5,
                answer="Good enough.",
            ),
            "dev": "work",
        }
    )
    team = AgentTeam.hierarchical("lead", ["dev"], provider=provider, max_replans=2)
    result = await team.run("Work")
    assert result.answer == "Good enough."
    assert result.details["replans"] == 2
    assert [t.kind for t in result.transcript].count("review") == 3
    assert [t.kind for t in result.transcript].count("subtask") == 3


# -- flat --------------------------------------------------------------------------------


async def test_flat_peers_share_memory_and_finish_on_final_answer():
    researcher = Agent(
        role="researcher",
        provider=ScriptedProvider(
            [call("remember", key="facts", value="Paris is the capital"), "Noted the facts."]
        ),
    )
    provider = routed(
        {
            "writer": lambda p: (
                "FINAL ANSWER: The capital of France is Paris."
                if "Paris is the capital" in p
                else "?"
            )
        }
    )
    team = AgentTeam.flat([researcher, "writer"], provider=provider, max_rounds=3)
    result = await team.run("What is the capital of France?")
    assert result.answer == "The capital of France is Paris."
    assert result.details["ended_by"] == "completion" and result.details["finished_by"] == "writer"
    assert result.details["memory"]["facts"] == "Paris is the capital"
    assert [(n["by"], n["round"]) for n in result.details["memory"]["notes"]] == [
        ("researcher", 1),
        ("writer", 1),
    ]


async def test_flat_without_shared_memory_passes_only_the_previous_turn():
    seen = []

    def peer(prompt):
        seen.append(prompt)
        return f"turn {len(seen)}"

    team = AgentTeam.flat(
        ["a", "b", "c"],
        shared_memory=False,
        max_rounds=2,
        provider=routed({"a": peer, "b": peer, "c": peer}),
    )
    result = await team.run("Brainstorm")
    assert result.details["ended_by"] == "round_limit" and result.answer == "turn 6"
    assert "previous_turn" not in seen[0]
    assert "a: turn 1" in seen[1] and "turn 1" not in seen[2] and "b: turn 2" in seen[2]
    assert [t.round for t in result.transcript] == [1, 1, 1, 2, 2, 2]


# -- pipeline ----------------------------------------------------------------------------


async def test_pipeline_gate_retries_and_stops():
    attempts = {"n": 0}

    def implementer(prompt):
        attempts["n"] += 1
        return "code v2 with tests" if "add tests" in prompt else "code v1"

    provider = routed({"analyzer": "spec", "implementer": implementer, "tester": "all green"})
    checks = []

    def gate(stage):
        checks.append((stage.index, stage.agent, stage.attempt))
        if stage.agent == "implementer" and "tests" not in stage.output:
            return "add tests"
        return True

    team = AgentTeam.pipeline(["analyzer", "implementer", "tester"], provider=provider, check=gate)
    result = await team.run("Write a parser")
    assert result.answer == "all green"
    assert checks == [
        (1, "analyzer", 1),
        (2, "implementer", 1),
        (2, "implementer", 2),
        (3, "tester", 1),
    ]
    assert [s["attempts"] for s in result.details["stages"]] == [1, 2, 1]
    tester_prompt = [r for r in provider.requests if role_of(r) == "tester"][0][-1].content
    assert "code v2 with tests" in tester_prompt

    async def stop_after_analysis(stage):
        return stage.index != 1

    team = AgentTeam.pipeline(
        ["analyzer", "implementer"],
        provider=routed({"analyzer": "nothing to do"}),
        check=stop_after_analysis,
    )
    result = await team.run("Write a parser")
    assert result.answer == "nothing to do" and result.details["stopped_at"] == "analyzer"
    assert len(result.transcript) == 1


async def test_pipeline_stage_that_keeps_failing_raises_with_its_error():
    team = AgentTeam.pipeline(
        ["analyzer", "implementer"],
        provider=routed(
            {"analyzer": "spec", "implementer": lambda p: TimeoutError("model timed out")}
        ),
        max_retries=1,
    )
    with pytest.raises(TeamError, match="stage 2 \\(implementer\\) did not succeed in 2") as err:
        await team.run("Write a parser")
    assert isinstance(err.value.errors["implementer"], TimeoutError)
    assert [t.agent for t in err.value.result.transcript] == [
        "analyzer",
        "implementer",
        "implementer",
    ]


# -- consensus ---------------------------------------------------------------------------


def voter(answer, votes):
    votes = list(votes)
    return lambda p: (
        votes.pop(0) if "Vote for the best" in p else answer(p) if callable(answer) else answer
    )


async def test_consensus_counts_votes_and_reports_dissent():
    provider = routed(
        {
            "a": voter("42", ['{"vote": "A", "reason": "correct"}']),
            "b": voter(" 42 ", ['{"vote": "A", "reason": "same as mine"}']),
            "c": voter("41", ['{"vote": "B", "reason": "I trust mine"}']),
        }
    )
    team = AgentTeam.consensus(["a", "b", "c"], min_agreement=2, provider=provider)
    with EventBus.capture("team.vote") as votes:
        result = await team.run("6 * 7?")
    assert result.answer == "42"
    assert result.details["winner"] == "A" and result.details["winning_authors"] == ["a", "b"]
    assert result.details["breakdown"] == {"A": 2, "B": 1}
    assert result.details["dissent"] == [{"voter": "c", "choice": "B", "reason": "I trust mine"}]
    assert sorted((v.data["voter"], v.data["choice"]) for v in votes) == [
        ("a", "A"),
        ("b", "A"),
        ("c", "B"),
    ]


async def test_a_ballot_in_words_is_read_and_refused_as_a_typed_answer_is():
    """A provider without structured outputs is asked in words; its reply is read by the
    same output type as a typed run's (JSON found in the prose), and a reply that does not
    fit is sent back with the errors a typed run would send."""
    provider = routed(
        {
            "a": voter("42", ['Mine: ```json\n{"vote": "A", "reason": "right"}\n```']),
            "b": voter("42", ['{"reason": "forgot the label"}', 'I pick {"vote": "A"}.']),
        }
    )
    team = AgentTeam.consensus(["a", "b"], min_agreement=2, provider=provider)
    result = await team.run("6 * 7?")
    assert result.answer == "42"
    votes = [t for t in result.transcript if t.kind == "vote"]
    assert [(t.agent, t.output.vote if t.output else None) for t in votes] == [
        ("a", "A"),
        ("b", None),
        ("b", "A"),
    ]
    problem = "it does not match the required Vote schema:\n- vote: Field required"
    assert votes[1].rejected == problem
    asked_again = [r for r in provider.requests if role_of(r) == "b"][-1][-1].content
    assert f"could not be used: {problem}" in asked_again


async def test_a_tie_leads_to_a_revision_round():
    provider = routed(
        {
            "a": voter("Use Postgres", ['{"vote": "A"}', '{"vote": "A"}']),
            "b": voter("Use SQLite", ['{"vote": "B"}', '{"vote": "A"}']),
            "c": voter(
                lambda p: "Use Postgres" if "revised" in p else "Use MySQL",
                ['{"vote": "B"}', '{"vote": "A"}'],
            ),
            "d": voter(
                "Use SQLite",
                ['{"vote": "A", "reason": "scale"}', '{"vote": "B", "reason": "simple"}'],
            ),
        }
    )
    team = AgentTeam.consensus(["a", "b", "c", "d"], min_agreement=2, provider=provider)
    result = await team.run("Which database?")
    first, second = result.details["rounds"]
    assert first["breakdown"] == {"A": 2, "B": 2, "C": 0}  # a tie: nobody wins
    assert [t.kind for t in result.transcript].count("revise") == 4
    assert second["breakdown"] == {"A": 3, "B": 1}
    assert result.answer == "Use Postgres" and result.details["winning_authors"] == ["a", "c"]
    assert result.details["dissent"] == [{"voter": "d", "choice": "B", "reason": "simple"}]


async def test_tied_votes_do_not_win():
    provider = routed(
        {
            "a": voter("X", ['{"vote": "A"}']),
            "b": voter("X", ['{"vote": "A"}']),
            "c": voter("Y", ['{"vote": "B"}']),
            "d": voter("Y", ['{"vote": "B"}']),
        }
    )
    team = AgentTeam.consensus(
        ["a", "b", "c", "d"], min_agreement=2, max_revisions=0, provider=provider
    )
    with pytest.raises(NoConsensusError, match="or it was a tie") as err:
        await team.run("X or Y?")
    assert err.value.breakdown == {"A": 2, "B": 2}
    assert err.value.candidates == {"A": "X", "B": "Y"}


async def test_no_agreement_is_a_catchable_outcome_with_the_votes():
    provider = routed(
        {
            "a": voter("red", ['{"vote": "A"}', '{"vote": "A"}']),
            "b": voter("green", ['{"vote": "B"}', "no idea", "still no idea"]),
            "c": voter("blue", ['{"vote": "C"}', '{"vote": "Z"}', '{"vote": "Z"}']),
        }
    )
    team = AgentTeam.consensus(["a", "b", "c"], min_agreement=2, max_revisions=1, provider=provider)
    with pytest.raises(NoConsensusError) as err:
        await team.run("Best colour?")
    assert len(err.value.rounds) == 2
    last_votes = {v["voter"]: v["choice"] for v in err.value.rounds[-1]["votes"]}
    assert last_votes == {"a": "A", "b": None, "c": None}  # malformed twice: abstentions
    assert err.value.breakdown == {"A": 1, "B": 0, "C": 0}
    assert isinstance(err.value, TeamError) and err.value.result.formation == "consensus"


# -- debate ------------------------------------------------------------------------------


async def test_debate_rounds_see_the_previous_round_and_the_judge_decides():
    prompts: dict[str, list[str]] = {"pro": [], "con": []}

    def debater(name):
        def reply(prompt):
            prompts[name].append(prompt)
            return f"{name} position {len(prompts[name])}"

        return reply

    provider = routed(
        {"pro": debater("pro"), "con": debater("con"), "judge": "Verdict: pro wins. Reasons: ..."}
    )
    team = AgentTeam.debate(["pro", "con"], rounds=3, judge="judge", provider=provider)
    with EventBus.capture("team.round") as rounds:
        result = await team.run("Tabs or spaces?")
    assert result.answer.startswith("Verdict: pro wins")
    assert result.details["rounds"] == [
        {"pro": f"pro position {r}", "con": f"con position {r}"} for r in (1, 2, 3)
    ]
    # round 2: each sees the other's round-1 position, nothing from round 2
    assert "con position 1" in prompts["pro"][1] and "con position 2" not in prompts["pro"][1]
    assert "pro position 1" in prompts["pro"][1]  # its own latest position
    assert "pro position 2" in prompts["con"][2] and "pro position 3" not in prompts["con"][2]
    assert "con position 1" not in prompts["pro"][0]
    judge_prompt = [r for r in provider.requests if role_of(r) == "judge"][0][-1].content
    assert "pro position 3" in judge_prompt and "con position 3" in judge_prompt
    assert [(e.data["round"], e.data["phase"]) for e in rounds] == [
        (1, "argue"),
        (2, "argue"),
        (3, "argue"),
        (3, "verdict"),
    ]


async def test_the_first_debater_judges_by_default_and_astream_streams_the_verdict():
    provider = routed({"a": lambda p: "A wins because x" if "judge" in p else "A", "b": "B"})
    team = AgentTeam.debate(["a", "b"], rounds=1, provider=provider)
    tokens = [t async for t in team.astream("Which?")]
    assert len(tokens) > 1 and "".join(tokens) == "A wins because x"
    assert team.last_result.details["judge"] == "a"


# -- events, usage, results ----------------------------------------------------------------


async def test_member_events_are_tagged_with_member_and_team_run_and_reach_the_default_bus():
    provider = routed(
        {
            "lead": lead_script(plan={"subtasks": [{"id": 1, "assignee": "dev", "task": "w"}]}),
            "dev": "work",
        }
    )
    team = AgentTeam.hierarchical("lead", ["dev"], provider=provider)
    with EventBus.capture() as everything, team.bus.capture() as on_team_bus:
        result = await team.run("Work")
    assert [e.id for e in everything] == [e.id for e in on_team_bus]
    team_run = result.run_id
    member_events = [e for e in everything if not e.type.startswith("team.")]
    assert {e.type for e in member_events} >= {
        "agent.start",
        "provider.request",
        "provider.response",
        "agent.complete",
    }
    assert all(e.parent == team_run for e in member_events)
    assert {e.agent for e in member_events} == {"lead", "dev"}
    assert all(e.run_id == team_run for e in everything if e.type.startswith("team."))
    runs = [e for e in everything if e.type == "agent.start"]
    assert [e.run_id for e in runs] == [t.run_id for t in result.transcript]


async def test_usage_is_accounted_per_agent_and_in_total():
    team = AgentTeam.pipeline(["a", "b"], provider=routed({"a": "one two three", "b": "four five"}))
    with EventBus.capture("provider.response") as responses:
        result = await team.run("Count")
    by_agent: dict[str, int] = {}
    for e in responses:
        by_agent[e.agent] = by_agent.get(e.agent, 0) + e.data["usage"]["output_tokens"]
    assert (
        {k: v.output_tokens for k, v in result.usage_by_agent.items()}
        == by_agent
        == {"a": 3, "b": 2}
    )
    assert result.usage.total_tokens == sum(u.total_tokens for u in result.usage_by_agent.values())
    assert result.requests == 2 and result.duration_ms > 0
    assert isinstance(result, TeamResult) and str(result) == "four five"
    assert "turns=2" in repr(result)


async def test_team_events_yields_the_runs_events_in_order():
    team = AgentTeam.pipeline(["a", "b"], provider=routed({"a": "x y", "b": "z"}))
    events = [e async for e in team.events("Go")]
    types = [e.type for e in events]
    assert types[0] == "team.start" and types[-1] == "team.complete"
    assert "agent.token" in types and types.count("agent.complete") == 2
    assert team.last_result.answer == "z"


async def test_tools_of_members_run_inside_the_team():
    from victor.tools import tool

    @tool
    def lookup(key: str) -> str:
        """Look up a key.

        Args:
            key: The key.
        """
        return f"value of {key}"

    analyst = Agent(
        role="analyst",
        tools=[lookup],
        provider=ScriptedProvider([call("lookup", key="k"), "found it"]),
    )
    team = AgentTeam.pipeline([analyst, "writer"], provider=routed({"writer": "report"}))
    with EventBus.capture("tool.*") as tools:
        result = await team.run("Report on k")
    assert [(e.type, e.agent, e.parent) for e in tools] == [
        ("tool.execution", "analyst", result.run_id)
    ]
    assert result.transcript[0].requests == 2


# -- limits, failures, cancellation --------------------------------------------------------


async def test_max_requests_stops_the_team():
    team = AgentTeam.flat(
        ["a", "b"], provider=routed({}, default="more"), max_rounds=5, max_requests=3
    )
    with pytest.raises(LimitExceededError, match="max_requests=3"):
        await team.run("Talk")


async def test_timeout_stops_every_member():
    async def slow(prompt):
        await asyncio.sleep(STALL)
        return "late"

    team = AgentTeam.consensus(
        ["a", "b", "c"], provider=routed({"a": slow, "b": slow, "c": slow}), timeout=0.3
    )
    started = asyncio.get_running_loop().time()
    with (
        EventBus.capture("agent.error") as errors,
        pytest.raises(LimitExceededError, match="timeout=0.3"),
    ):
        await team.run("Slow question")
    assert asyncio.get_running_loop().time() - started < PROMPTLY  # not the members' STALL
    assert sorted(e.agent for e in errors) == ["a", "b", "c"]
    assert all(e.data["error"] == "cancelled" for e in errors)


async def test_cancelling_the_team_cancels_all_members():
    started = asyncio.Event()
    running = []

    async def slow(prompt):
        running.append(1)
        if len(running) == 3:
            started.set()
        await asyncio.sleep(STALL)
        return "never"

    team = AgentTeam.debate(["a", "b", "c"], provider=routed({"a": slow, "b": slow, "c": slow}))
    with EventBus.capture("*.error") as errors:
        job = asyncio.create_task(team.run("Argue"))
        await asyncio.wait_for(started.wait(), PROMPTLY)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
    assert sorted(e.agent for e in errors if e.type == "agent.error") == ["a", "b", "c"]
    assert [e.data["error_type"] for e in errors if e.type == "team.error"] == ["CancelledError"]


async def test_leaving_astream_early_cancels_the_run():
    # a word every 0.2 s: the whole answer would take as long as a STALL
    words = " ".join(["one"] + ["more"] * int(STALL / 0.2))
    writer = Agent(role="writer", provider=ScriptedProvider([words], chunk_delay=0.2))
    team = AgentTeam.pipeline(["planner", writer], provider=routed({"planner": "plan"}))
    started = asyncio.get_running_loop().time()
    with EventBus.capture("*.error") as errors:
        async with aclosing(team.astream("Go")) as tokens:
            async for token in tokens:
                assert token == "one"
                break
    assert asyncio.get_running_loop().time() - started < PROMPTLY  # not the whole answer
    assert [(e.type, e.agent, e.data["error"]) for e in errors] == [
        ("agent.error", "writer", "cancelled"),
        ("team.error", "pipeline", "cancelled"),
    ]


async def test_a_failing_debater_drops_out_and_the_rest_carry_on():
    team = AgentTeam.debate(
        ["a", "b", "c"],
        rounds=2,
        provider=routed({"a": "A", "b": lambda p: ValueError("b broke"), "c": "C"}),
    )
    result = await team.run("Which?")
    assert result.details["rounds"] == [{"a": "A", "c": "C"}, {"a": "A", "c": "C"}]
    assert [t.agent for t in result.transcript if t.round == 2 and t.kind == "position"] == [
        "a",
        "c",
    ]


async def test_flat_shared_memory_can_be_a_state_kept_across_runs(tmp_path):
    memory = State()
    team = AgentTeam.flat(["a"], provider=routed({"a": "FINAL ANSWER: done"}), memory=memory)
    await team.run("First")
    await team.run("Second")
    assert [n["text"] for n in memory["notes"]] == ["FINAL ANSWER: done"] * 2
    memory.save(tmp_path / "memory.json")
    assert State.load(tmp_path / "memory.json")["notes"][0]["by"] == "a"


# -- over a protocol server ----------------------------------------------------------------


async def test_a_hierarchical_team_over_the_anthropic_protocol(anthropic_server: AnthropicServer):
    plan = {
        "subtasks": [
            {"id": 1, "assignee": "writer", "task": "draft"},
            {"id": 2, "assignee": "editor", "task": "style guide"},
        ]
    }
    # The lead's plan and review are typed runs: the API's answer is a call to the output
    # tool the request forces, as the real API sends it.
    anthropic_server.script(
        Json(plan),
        Text("member result"),
        Text("member result"),
        Json({"decision": "accept"}),
        Text("The final article."),
    )
    team = AgentTeam.hierarchical(
        "lead",
        ["writer", "editor"],
        provider="anthropic",
        base_url=anthropic_server.url,
        api_key="test-key",
    )
    try:
        with EventBus.capture("provider.response") as responses:
            result = await team.run("Write an article")
    finally:
        await team.cleanup()
    assert result.answer == "The final article."
    assert [t.content for t in result.transcript[1:3]] == ["member result", "member result"]
    assert [s["assignee"] for s in result.details["plan"]] == ["writer", "editor"]
    assert len(anthropic_server.requests) == 5 and len(responses) == 5
    forced = [(r.body.get("tool_choice") or {}).get("name") for r in anthropic_server.requests]
    assert forced == ["Plan", None, None, "Review", None]
    systems = [r.body.get("system") for r in anthropic_server.requests]
    assert (
        sum("writer" in str(s) for s in systems) == 1
        and sum("lead" in str(s) for s in systems) == 3
    )
    assert result.usage.total_tokens > 0 and "test-key" not in repr(result.events)


async def test_a_typed_plan_that_stays_invalid_is_a_structured_output_error(anthropic_server):
    # The run sends the invalid plan back itself (output_retries); then the team gives up.
    anthropic_server.script(Json({"subtasks": "none"}), Json({"steps": []}))
    team = AgentTeam.hierarchical(
        "lead", ["writer"], provider="anthropic", base_url=anthropic_server.url, api_key="k"
    )
    try:
        with pytest.raises(StructuredOutputError, match="valid plan: .* after 2 attempt") as err:
            await team.run("Write an article")
    finally:
        await team.cleanup()
    assert "subtasks" in str(err.value) and isinstance(err.value.__cause__, OutputValidationError)
    assert len(anthropic_server.requests) == 2
    sent_back = anthropic_server.requests[1].body["messages"]
    assert "subtasks" in json.dumps(sent_back[-1])  # the validation errors, to the model


@pytest.mark.parametrize(
    ("make", "setting", "says"),
    [
        (lambda **kw: AgentTeam.consensus(["a", "b"], **kw), "temperature", "provider_options"),
        (lambda **kw: AgentTeam.consensus(["a", "b"], **kw), "min_agrement", "'min_agreement'"),
        (lambda **kw: AgentTeam.hierarchical("l", ["a"], **kw), "max_request", "'max_requests'"),
        (lambda **kw: AgentTeam.debate(["a", "b"], **kw), "zzz", "It takes: "),
        (lambda **kw: AgentTeam.pipeline(["a", "b"], **kw), "check_stage", "'check'"),
        (lambda **kw: AgentTeam.flat(["a", "b"], **kw), "sharedmemory", "'shared_memory'"),
    ],
)
def test_a_setting_no_formation_takes_is_refused_with_the_fix(make, setting, says):
    with pytest.raises(ConfigurationError, match=f"takes no setting '{setting}'") as err:
        make(provider=ScriptedProvider(["x"]), **{setting: 1})
    assert says in str(err.value)
