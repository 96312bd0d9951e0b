"""Token and cost accounting: a price table lookup, per-call records, and totals per turn/session/user-day.

Prices are USD per 1M tokens (``Settings.model_prices``, e.g. Haiku 0.25/1.25, Sonnet 3/15, the published
Bedrock on-demand prices of Claude 3 Haiku and Claude 3.5 Sonnet). Token counts come from the provider's
``usage`` block (Converse ``usage.inputTokens``/``outputTokens``, surfaced by LangChain as
``AIMessage.usage_metadata``); local models cost 0. A remote model with no price cannot run while a USD
budget is set (start-up error).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping


def find_price(model: str, prices: Mapping[str, tuple[float, float]]) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens of ``model``: the longest key of ``prices`` contained in the
    model id (case-insensitive); None when no key matches (an unpriced model)."""
    m = model.lower()
    best = max((k for k in prices if k.lower() in m), key=len, default=None)
    return (float(prices[best][0]), float(prices[best][1])) if best else None


def price_of(model: str, prices: Mapping[str, tuple[float, float]]) -> tuple[float, float]:
    """``find_price`` or (0, 0) for local models (remote models without a price are refused at start-up
    while a USD budget applies: tools/backends/models/bedrock.check_prices)."""
    return find_price(model, prices) or (0.0, 0.0)


def cost_usd(model: str, input_tokens: int, output_tokens: int, prices: Mapping[str, tuple[float, float]]) -> float:
    """USD of one call: tokens × price per 1M tokens."""
    p_in, p_out = price_of(model, prices)
    return (input_tokens * p_in + output_tokens * p_out) / 1_000_000


def tokens_of(message: Any) -> tuple[int, int]:
    """(input_tokens, output_tokens) of an AIMessage's ``usage_metadata`` ((0, 0) when absent)."""
    usage = getattr(message, "usage_metadata", None) or {}
    return int(usage.get("input_tokens", 0) or 0), int(usage.get("output_tokens", 0) or 0)


@dataclass
class CallRecord:
    """One model call attempt chain on one tier.

    role: router|planner|writer|critic|think:<agent>; model: model id (or 'local:<role>'); tier: position in
    the role's fallback chain (0 = primary); outcome: 'ok', 'error:<kind>' (timeout, throttled, service,
    malformed, connection, auth) or 'skipped:<reason>' (circuit_open, latency, usd); attempts: tries made
    (retries on transient errors); ms: wall time of the tier; usd: input/output tokens × price table.
    """

    role: str
    model: str
    tier: int
    outcome: str
    input_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0
    ms: float = 0.0
    attempts: int = 0
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict:
        """The record as a JSON-ready dict (usd and ms rounded)."""
        d = asdict(self)
        d["usd"] = round(self.usd, 8)
        d["ms"] = round(self.ms, 2)
        return d


@dataclass
class UsageMeter:
    """Collects the CallRecords (as dicts) of the model calls made inside one node run."""

    calls: list[dict] = field(default_factory=list)

    def record(self, rec: CallRecord) -> None:
        """Add one model call."""
        self.calls.append(rec.to_dict())

    @property
    def usd(self) -> float:
        """Total spend in USD."""
        return sum(c.get("usd", 0.0) for c in self.calls)


def summarize(calls: Iterable[Mapping[str, Any]]) -> dict:
    """Totals of call dicts: {input_tokens, output_tokens, usd, calls: [...], fallbacks: int}.

    ``fallbacks`` counts tiers that failed or were skipped (each sends the role to its next tier).
    """
    calls = list(calls)
    return {
        "input_tokens": sum(int(c.get("input_tokens", 0)) for c in calls),
        "output_tokens": sum(int(c.get("output_tokens", 0)) for c in calls),
        "usd": round(sum(float(c.get("usd", 0.0)) for c in calls), 8),
        "calls": calls,
        "fallbacks": sum(1 for c in calls if c.get("outcome", "ok") != "ok"),
    }


def add_totals(total: Mapping[str, Any] | None, turn: Mapping[str, Any]) -> dict:
    """Running totals {input_tokens, output_tokens, usd, turns, calls} after adding one turn summary."""
    total = dict(total or {})
    return {
        "input_tokens": int(total.get("input_tokens", 0)) + int(turn.get("input_tokens", 0)),
        "output_tokens": int(total.get("output_tokens", 0)) + int(turn.get("output_tokens", 0)),
        "usd": round(float(total.get("usd", 0.0)) + float(turn.get("usd", 0.0)), 8),
        "turns": int(total.get("turns", 0)) + 1,
        "calls": int(total.get("calls", 0)) + len(turn.get("calls") or []),
    }
