"""The local profile's planner: rule-based decomposition of a multi-part request into dependent steps."""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from core.agents import REGISTRY, AgentRegistry
from core.ports import Plan, PlanStep, RouterDecision
from tools.backends.models.text_rules import split_clauses

_DEPENDS = re.compile(r"\b(it|that|them|those|the first|this one)\b|それ|その", re.I)


class LocalPlanner:
    """Splits the message into clauses (one step each, labelled by the router's best intent for the clause
    via ``route``); a clause that refers back ("add volume 1 of it") depends on the previous step.

    ``route``: an async ``(text) -> RouterDecision``; ``registry`` names the agent serving each intent.
    """

    def __init__(self, route, registry: AgentRegistry = REGISTRY):
        self._route = route
        self._agent_of = registry.agent_of

    async def aplan(self, text: str, decision: RouterDecision, history: Sequence[str] = (),
                    focus: Mapping[str, Any] | None = None) -> Plan:
        """Steps from the clauses of ``text`` (``history``/``focus`` unused: a step's back-reference is resolved
        by its dependency)."""
        steps: list[PlanStep] = []
        for i, clause in enumerate(split_clauses(text) or [text]):
            intent = (await self._route(clause)).intents[0]
            deps = [steps[-1].id] if steps and _DEPENDS.search(clause) else []
            steps.append(PlanStep(id=f"s{i + 1}", agent=self._agent_of[intent], request=clause, depends_on=deps))
        return Plan(steps=steps)
