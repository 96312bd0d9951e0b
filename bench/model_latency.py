"""Model-latency benchmark of the bedrock profile with simulated models: p50/p95 turn latency for single- and
multi-intent turns under the per-turn budget, degrade/fallback rates, and USD per 1,000 turns.

``SimulatedChat`` is a LangChain chat model that answers each role the way the deployed model is asked to
(RouterDecision / Critique / Plan tool calls, specialist tool calls, the answer text) by delegating the
decision to the local profile's role, after sleeping a simulated latency (Haiku ~400 ms, Sonnet ~1500 ms,
± jitter, seeded) and reporting token usage like Converse does (``usage_metadata``; input ≈ characters/4
of the prompt, output ≈ characters/4 of the reply). Everything else is the real graph: fallback chains,
budgets, the supervisor, specialists, tools over the real catalog and a seeded SQLite orders database.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Mapping, Sequence

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field

from core.ports import RouterDecision
from core.settings import Settings
from tools.backends.models.prompts import AGENT_SYSTEM, CRITIC_SYSTEM, PLANNER_SYSTEM, REVIEW_SYSTEM, ROUTER_SYSTEM

SIM_MODELS = {"router_model": "sim:claude-3-haiku", "critic_model": "sim:claude-3-haiku",
              "agent_model": "sim:claude-3-haiku", "small_model": "sim:claude-3-haiku",
              "planner_model": "sim:claude-3-5-sonnet", "writer_model": "sim:claude-3-5-sonnet"}
"""Settings overrides naming simulated models; the 'haiku'/'sonnet' keys of the price and latency tables match."""

DEFAULT_LATENCY_MS = {"haiku": 400.0, "sonnet": 1500.0}

SINGLE = ("Do you have Berserk?", "Recommend something like Vinland Saga", "What is your return policy?",
          "ベルセルクはありますか？", "Where is my order?", "Who wrote Monster?")
MULTI = ("Do you have Berserk and what is your return policy?",
         "Where is my order? Also, recommend something like Monster",
         "Do you have One Piece and how much is shipping?")


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


class SimulatedChat(BaseChatModel):
    """Chat model with simulated latency and usage that answers each role through the local profile's logic.

    model: id (prices/latency tables match its 'haiku'/'sonnet'); latency_ms, jitter (fraction, uniform);
    local: the local Models; fail_with: exceptions raised by the next calls (one per call, in order);
    usage: fixed (input, output) tokens per call instead of the character estimate; tool_script:
    ``(agent, data) → list[tool_call dict]`` replacing the local think policy; calls: calls made.
    """

    model: str
    latency_ms: float = 0.0
    jitter: float = 0.0
    local: Any = None
    fail_with: list = Field(default_factory=list)
    usage: tuple[int, int] | None = None
    tool_script: Any = None
    rng: Any = None
    calls: int = 0
    model_config = ConfigDict(arbitrary_types_allowed=True)

    @property
    def _llm_type(self) -> str:
        return "mangaassist-simulated"

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any):
        from langchain_core.utils.function_calling import convert_to_openai_tool

        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return asyncio.run(self._agenerate(messages, stop, **kwargs))

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        self.calls += 1
        rng = self.rng or random
        delay = self.latency_ms * (1 + rng.uniform(-self.jitter, self.jitter)) / 1000
        await asyncio.sleep(max(0.0, delay))
        if self.fail_with:
            raise self.fail_with.pop(0)
        msg = await self._answer(messages, kwargs.get("tools") or [])
        prompt = "".join(str(m.content) for m in messages)
        out = json.dumps(msg.tool_calls, default=str) if msg.tool_calls else str(msg.content)
        tin, tout = self.usage or (_tokens(prompt), _tokens(out))
        msg.usage_metadata = {"input_tokens": tin, "output_tokens": tout, "total_tokens": tin + tout}
        return ChatResult(generations=[ChatGeneration(message=msg)])

    async def _answer(self, messages: list[BaseMessage], tools: list[dict]) -> AIMessage:
        system = str(messages[0].content) if messages and isinstance(messages[0], SystemMessage) else ""
        data = json.loads(str(messages[1].content)) if len(messages) > 1 else {}

        def call(name: str, args: dict) -> AIMessage:
            return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"tu_{uuid.uuid4().hex[:10]}", "type": "tool_call"}])

        local = self.local
        if system.startswith(ROUTER_SYSTEM):  # the roles' systems end with prompts.CONTEXT_NOTE
            d = await local.router.aroute(data["message"], data.get("history") or [], data.get("focus") or {})
            return call("RouterDecision", d.model_dump())
        if system == CRITIC_SYSTEM:
            c = await local.critic.acritique(data["answer"], data["evidence"], data["locale"])
            return call("Critique", c.model_dump())
        if system == REVIEW_SYSTEM:
            c = await local.critic.areview_evidence(data["agent"], data["intent"], data["request"], data["evidence"])
            return call("Critique", c.model_dump())
        if system.startswith(PLANNER_SYSTEM):
            p = await local.planner.aplan(data["message"], RouterDecision(intents=data["intents"] or ["search"], complex=True),
                                          data.get("history") or [], data.get("focus") or {})
            return call("Plan", p.model_dump())
        agent = next((a for a, s in AGENT_SYSTEM.items() if system.startswith(s)), None)
        if agent is not None:
            if self.tool_script is not None:
                return AIMessage(content="", tool_calls=self.tool_script(agent, data))
            state = {**data, "scratch": messages[2:], "reflections": 1 if data.get("retry_instructions") else 0,
                     "critique": {"ok": False, "retry_instructions": data.get("retry_instructions", "")}}
            return await local.agents[agent].athink(state, [], SimpleNamespace(search_k=int(data.get("max_results", 5))))
        # writer: same input as the local template writer
        return await local.writer.ainvoke(messages)


def simulated_settings(base: Settings, **overrides: Any) -> Settings:
    """``base`` with the bedrock profile on simulated models (SIM_MODELS) and ``overrides``."""
    return base.model_copy(update={"profile": "bedrock", **SIM_MODELS, **overrides})


def simulated_models(settings: Settings, local: Any, latency_ms: Mapping[str, float] | None = None,
                     jitter: float = 0.0, seed: int = 0,
                     per_model: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[Any, dict]:
    """(Models, {model id: SimulatedChat}) of the bedrock profile on simulated models.

    ``latency_ms`` maps 'haiku'/'sonnet' → ms; ``per_model`` maps a model id → SimulatedChat field overrides
    (e.g. {"sim:claude-3-5-sonnet": {"latency_ms": 2500}}). One SimulatedChat per model id (shared by regions).
    """
    from tools.backends.models.bedrock import build_bedrock_models

    lat = dict(DEFAULT_LATENCY_MS, **(latency_ms or {}))
    rng = random.Random(seed)
    chats: dict[str, SimulatedChat] = {}

    def factory(model: str, region: str, streaming: bool) -> SimulatedChat:
        if model not in chats:
            key = "sonnet" if "sonnet" in model else "haiku"
            fields = {"model": model, "latency_ms": lat[key], "jitter": jitter, "local": local, "rng": rng,
                      **dict((per_model or {}).get(model, {}))}
            chats[model] = SimulatedChat(**fields)
        return chats[model]

    return build_bedrock_models(settings, fallback=local, chat_factory=factory), chats


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0-1) by linear interpolation (statistics.quantiles, 'inclusive'); 0 for no values."""
    if not values:
        return 0.0
    if len(values) == 1:
        return float(values[0])
    return statistics.quantiles(values, n=100, method="inclusive")[min(98, max(0, round(q * 100) - 1))]


async def run_model_bench(turns: int = 60, concurrency: int = 12, budget_ms: float = 3000.0, jitter: float = 0.2,
                          latency_ms: Mapping[str, float] | None = None, seed: int = 7) -> dict:
    """Run ``turns`` single-intent and ``turns`` multi-intent turns (each on a fresh thread, ``concurrency`` at
    a time) through the supervisor on simulated models. Returns {"single": stats, "multi": stats, ...} with
    p50_ms/p95_ms/mean_ms, degraded_rate, fallback_rate, usd_per_1000_turns, tokens per turn."""
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.store.memory import InMemoryStore

    from core.deps import Deps
    from graphs.app import Assistant
    from graphs.supervisor import build_supervisor
    from tools.backends.cache import InProcessCache
    from tools.backends.catalog import load_catalog
    from tools.backends.factory import build_models, shared_index, shared_recommender
    from tools.backends.policies import MarkdownPolicyKB
    from tools.backends.seed import open_orders_repository

    tmp = Path(tempfile.mkdtemp(prefix="ma-bench-models-"))
    base = Settings(data_dir=tmp, database_url=None, redis_url=None, latency_budget_ms=budget_ms)
    local = build_models(base)
    settings = simulated_settings(base)
    models, _ = simulated_models(settings, local, latency_ms, jitter=jitter, seed=seed)
    catalog = load_catalog()
    orders = await open_orders_repository(settings)
    deps = Deps(settings=settings, catalog=catalog, index=shared_index(catalog), recommender=shared_recommender(catalog),
                orders=orders, policies=MarkdownPolicyKB.load(settings.shipped_data_dir / "policies"),
                cache=InProcessCache(), models=models)
    users = [u["user_id"] for u in await orders.demo_users()]
    graph = build_supervisor(deps).compile(checkpointer=InMemorySaver(), store=InMemoryStore())
    assistant = Assistant(graph, deps, None)
    sem = asyncio.Semaphore(concurrency)
    out: dict[str, Any] = {"turns_per_kind": turns, "concurrency": concurrency, "budget_ms": budget_ms,
                           "latency_ms": dict(DEFAULT_LATENCY_MS, **(latency_ms or {})), "jitter": jitter,
                           "prices_usd_per_1m": {k: list(v) for k, v in settings.model_prices.items()}}
    try:
        for kind, script in (("single", SINGLE), ("multi", MULTI)):
            async def one(i: int, script: tuple = script) -> dict:
                async with sem:
                    t0 = time.perf_counter()
                    res = await assistant.turn(script[i % len(script)], None, users[i % len(users)] if users else "anonymous")
                    res["_ms"] = (time.perf_counter() - t0) * 1000
                    return res

            results = await asyncio.gather(*(one(i) for i in range(turns)))
            ms = [r["_ms"] for r in results]
            usd = [r["usage"]["usd"] for r in results]
            out[kind] = {
                "p50_ms": round(percentile(ms, 0.50), 1), "p95_ms": round(percentile(ms, 0.95), 1),
                "mean_ms": round(statistics.fmean(ms), 1), "max_ms": round(max(ms), 1),
                "over_budget_rate": round(sum(m > budget_ms for m in ms) / len(ms), 3),
                "degraded_rate": round(sum(bool(r["budget"]["degraded"]) for r in results) / len(results), 3),
                "fallback_rate": round(sum(r["usage"]["fallbacks"] > 0 for r in results) / len(results), 3),
                "calls_per_turn": round(statistics.fmean(len(r["usage"]["calls"]) for r in results), 2),
                "input_tokens_per_turn": round(statistics.fmean(r["usage"]["input_tokens"] for r in results), 1),
                "output_tokens_per_turn": round(statistics.fmean(r["usage"]["output_tokens"] for r in results), 1),
                "usd_per_1000_turns": round(1000 * statistics.fmean(usd), 3),
                "degraded_steps": sorted({d for r in results for d in r["budget"]["degraded"]}),
            }
    finally:
        await orders.close()
    return out


def render_table(res: dict) -> str:
    """A fixed-width table of ``run_model_bench`` results."""
    cols = ("p50_ms", "p95_ms", "mean_ms", "over_budget_rate", "degraded_rate", "fallback_rate", "calls_per_turn",
            "usd_per_1000_turns")
    lines = [f"simulated models {res['latency_ms']} ms ±{int(res['jitter'] * 100)}%, budget {res['budget_ms']:.0f} ms, "
             f"{res['turns_per_kind']} turns per kind, {res['concurrency']} concurrent",
             "kind    " + " ".join(f"{c:>18}" for c in cols)]
    for kind in ("single", "multi"):
        lines.append(f"{kind:<8}" + " ".join(f"{res[kind][c]:>18}" for c in cols))
    return "\n".join(lines)
