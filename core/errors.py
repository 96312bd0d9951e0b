"""Domain errors: expected failures that tools turn into messages the agent can act on."""

from __future__ import annotations


class MangaAssistError(Exception):
    """Base of every expected, user-explainable error."""


class ConfigurationError(MangaAssistError):
    """Settings or credentials are missing or invalid (the CLI exits with code 2)."""


class OrderError(MangaAssistError):
    """Base for order-domain errors; ``str(err)`` is safe to show the customer."""


class OrderNotFound(OrderError):
    """No order with that id belongs to the authenticated customer (also raised for other users' orders)."""

    def __init__(self, order_id: str):
        super().__init__(f"No order {order_id} was found on your account.")
        self.order_id = order_id


class OrderActionNotAllowed(OrderError):
    """The order's status does not allow the action (e.g. cancelling a shipped order)."""

    def __init__(self, order_id: str, action: str, status: str, reason: str = ""):
        msg = f"Order {order_id} is {status}, so it cannot be {'cancelled' if action == 'cancel' else 'returned'}."
        super().__init__(msg + (f" {reason}" if reason else ""))
        self.order_id, self.action, self.status = order_id, action, status


class UnknownThread(MangaAssistError):
    """The thread does not exist or is not the caller's (the API answers 404 either way)."""


class BudgetExceeded(MangaAssistError):
    """A per-turn, per-session or per-user budget (time or USD) would be exceeded by the next call."""


class AgentWiringError(ConfigurationError, ValueError):
    """A registered agent (core/agents.py) lacks a piece the supervisor needs, found at graph build time.

    ``agent`` is the agent's name and ``missing`` what it lacks, each one of "tools" (graphs/specialist.py
    ``AGENT_TOOLS``, or factories that make none), "think policy" (``Deps.models.agents`` of the profile),
    "prompt" (tools/backends/models/prompts.py ``AGENT_SYSTEM``), "writer template" (tools/backends/models/templates.py
    ``AGENT_TEMPLATES``). A ValueError too, as build-time wiring errors were before.
    """

    def __init__(self, agent: str, missing: list[str] | tuple[str, ...], profile: str = ""):
        where = f" (profile {profile!r})" if profile else ""
        super().__init__(f"agent {agent!r} is registered but has no {' and no '.join(missing)}{where}")
        self.agent, self.missing, self.profile = agent, tuple(missing), profile
