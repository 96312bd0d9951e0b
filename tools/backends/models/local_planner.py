"""The local profile's planner: rule-based decomposition of a multi-part request into dependent steps."""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from core.ports import Plan, PlanStep, RouterDecision
from tools.backends.models.text_rules import split_clauses

AGENT_OF = {"search": "search", "recommend": "recommend", "order": "order", "faq": "conversation",
            "chitchat": "conversation", "handoff": "conversation", "out_of_scope": "conversation"}
_DEPENDS = re.compile(r"\b(it|that|them|those|the first|this one)\b|それ|その", re.I)


class LocalPlanner:
    """Splits the message into clauses (one step each, labelled by the router's best intent for the clause
    via ``route``); a clause that refers back ("add volume 1 of it") depends on the previous step."""

    def __init__(self, route):
        self._route = route

    async def aplan(self, text: str, decision: RouterDecision, history: Sequence[str] = (),
                    focus: Mapping[str, Any] | None = None) -> Plan:
        """Steps from the clauses of ``text`` (``history``/``focus`` unused: a step's back-reference is resolved
        by its dependency)."""
        steps: list[PlanStep] = []
        for i, clause in enumerate(split_clauses(text) or [text]):
            intent = (await self._route(clause)).intents[0]
            deps = [steps[-1].id] if steps and _DEPENDS.search(clause) else []
            steps.append(PlanStep(id=f"s{i + 1}", agent=AGENT_OF[intent], request=clause, depends_on=deps))
        return Plan(steps=steps)
