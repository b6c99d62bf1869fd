"""Multi-agent teams: ``AgentTeam`` and its five formations, and ``TeamResult``.

from victor import Agent, AgentTeam
team = AgentTeam.hierarchical(lead="architect", subagents=["frontend", "backend"])
result = await team.run("Implement user registration")
print(result)                 # the final answer
result.transcript, result.usage_by_agent, result.details["plan"]
"""

from __future__ import annotations

from .base import AgentTeam, StructuredOutputError, TeamError, TeamResult, TeamRun, Turn
from .consensus import ConsensusTeam, NoConsensusError
from .debate import DebateTeam
from .flat import FlatTeam
from .hierarchical import HierarchicalTeam
from .pipeline import PipelineTeam, Stage

__all__ = [
    "AgentTeam",
    "TeamResult",
    "Turn",
    "TeamRun",
    "TeamError",
    "StructuredOutputError",
    "NoConsensusError",
    "HierarchicalTeam",
    "FlatTeam",
    "PipelineTeam",
    "Stage",
    "ConsensusTeam",
    "DebateTeam",
]
