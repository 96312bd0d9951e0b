"""The model roles' prompts, re-exported from their home ``tools.backends.models.prompts``.

The model profiles send these prompts, so they are defined in the tools layer, which may not import nodes; this
module keeps ``from nodes.prompts import ...`` working (the names are the same objects, e.g. one ``AGENT_SYSTEM``).
"""

from __future__ import annotations

from tools.backends.models.prompts import (
    AGENT_RULES,
    AGENT_SYSTEM,
    CONTEXT_NOTE,
    CRITIC_SYSTEM,
    PLANNER_SYSTEM,
    REVIEW_SYSTEM,
    ROUTER_SYSTEM,
    WRITER_SYSTEM,
    agent_messages,
    critic_messages,
    focus_view,
    planner_messages,
    review_messages,
    router_messages,
    writer_messages,
)

__all__ = [
    "AGENT_RULES",
    "AGENT_SYSTEM",
    "CONTEXT_NOTE",
    "CRITIC_SYSTEM",
    "PLANNER_SYSTEM",
    "REVIEW_SYSTEM",
    "ROUTER_SYSTEM",
    "WRITER_SYSTEM",
    "agent_messages",
    "critic_messages",
    "focus_view",
    "planner_messages",
    "review_messages",
    "router_messages",
    "writer_messages",
]
