"""Workflows: named sequences of prompts an agent runs step by step (``agent.run_workflow``).

A workflow is TOML — built in, or a file ``$VICTOR_HOME/workflows/NAME.toml``::

    description = "Review a pull request"

    [[steps]]
    name = "understand"
    prompt = "Summarise what pull request #{pr_number} changes."

    [[steps]]
    name = "review"
    prompt = "Review it for bugs and security issues.\\n\\nSummary:\\n{understand}"

Each step's prompt is formatted with the workflow's input and the output of every earlier
step (by step name; ``{previous}`` is the step just before); a name nobody gave is left
empty, and braces around anything that is not a plain name stay as they are. The input is
also attached to every step as context, so a prompt need not repeat it.
"""

from __future__ import annotations

import string
import sys
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from pydantic import BaseModel, Field, ValidationError

from ..config import victor_home
from ..core.events import current_scope
from ..errors import ConfigurationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib



class Runs(Protocol):
    """What a workflow runs its steps on: an ``Agent`` (anything with its ``run``)."""

    async def run(
        self,
        task: str,
        context: Mapping[str, Any] | None = None,
        tools: Iterable[Any] | None = None,
    ) -> Any: ...

__all__ = [
    "Workflow",
    "WorkflowStep",
    "WorkflowResult",
    "load_workflow",
    "list_workflows",
    "run_workflow",
]


class WorkflowStep(BaseModel):
    name: str
    prompt: str
    tools: list[str] = Field(default_factory=list)


class Workflow(BaseModel):
    name: str
    description: str = ""
    steps: list[WorkflowStep] = Field(min_length=1)


class WorkflowResult(str):
    """The final step's output (it prints as that), with every step's output in ``steps``."""

    steps: dict[str, str]
    workflow: str

    def __new__(cls, output: str, *, workflow: str, steps: dict[str, str]) -> WorkflowResult:
        result = super().__new__(cls, output)
        result.workflow = workflow
        result.steps = steps
        return result


BUILTIN: dict[str, dict[str, Any]] = {
    "code-review": {
        "description": "Review code or a change for bugs, security, performance and style.",
        "steps": [
            {
                "name": "understand",
                "prompt": "Describe briefly what the code or change in the context is meant to do.",
            },
            {
                "name": "review",
                "prompt": "Review it for bugs, security issues, performance problems and "
                "code style. List concrete findings with locations.\n\nWhat it does:\n{understand}",
            },
            {
                "name": "summary",
                "prompt": "Summarise the review in at most five bullet points, most important "
                "first, ending with a verdict (approve / request changes).\n\nReview:\n{review}",
            },
        ],
    },
    "explain": {
        "description": "Explain a piece of code or a concept for a newcomer.",
        "steps": [
            {
                "name": "explain",
                "prompt": "Explain what the context holds clearly, for a newcomer.",
            },
        ],
    },
}


def list_workflows() -> list[str]:
    """Names of built-in workflows and of files in ``$VICTOR_HOME/workflows``."""
    names = set(BUILTIN)
    folder = victor_home() / "workflows"
    if folder.is_dir():
        names.update(p.stem for p in folder.glob("*.toml"))
    return sorted(names)


def load_workflow(name: str) -> Workflow:
    """The workflow called ``name``: a user file wins over a built-in of the same name."""
    path = victor_home() / "workflows" / f"{name}.toml"
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(f"cannot read workflow file {path}: {exc}") from exc
    elif name in BUILTIN:
        data = BUILTIN[name]
    else:
        raise ConfigurationError(
            f"Unknown workflow {name!r}. Available: {', '.join(list_workflows())}; "
            f"add one as {path}"
        )
    if "name" in data and data["name"] != name:
        # The file name is the workflow's name (how run_workflow finds it): a second one
        # inside could only disagree with it.
        raise ConfigurationError(
            f"workflow file {path} sets name = {data['name']!r}, but a workflow is named by "
            f"its file ({name!r}): remove the name key, or rename the file to "
            f"{data['name']}.toml"
        )
    try:
        return Workflow(**{**data, "name": name})
    except ValidationError as exc:
        raise ConfigurationError(f"workflow {name!r} is invalid: {exc}") from exc


def _format(template: str, values: dict[str, Any]) -> str:
    """Fill ``{name}`` fields from ``values``; braces that are not simple names stay."""
    out = []
    for literal, field, spec, conversion in string.Formatter().parse(template):
        out.append(literal)
        if field is None:
            continue
        if field.isidentifier() and not spec and not conversion:
            out.append(str(values.get(field, "")))
        else:
            out.append(
                "{"
                + field
                + (f"!{conversion}" if conversion else "")
                + (f":{spec}" if spec else "")
                + "}"
            )
    return "".join(out)


async def run_workflow(
    agent: Runs, workflow: str | Workflow, input: dict[str, Any] | None = None
) -> WorkflowResult:
    """Run each step of ``workflow`` on ``agent`` in order; return the last step's output."""
    flow = workflow if isinstance(workflow, Workflow) else load_workflow(workflow)
    values: dict[str, Any] = dict(input or {})
    outputs: dict[str, str] = {}
    scope = current_scope()
    for index, step in enumerate(flow.steps, start=1):
        await scope.emit(
            "workflow.step", {"workflow": flow.name, "step": step.name, "index": index}
        )
        prompt = _format(step.prompt, values).strip()
        output = await agent.run(prompt, context=input or None, tools=step.tools or None)
        outputs[step.name] = values[step.name] = values["previous"] = output
    return WorkflowResult(outputs[flow.steps[-1].name], workflow=flow.name, steps=outputs)
