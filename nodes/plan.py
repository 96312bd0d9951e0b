"""Planner–executor node for complex requests: plan a DAG of agent steps, run each level's steps in parallel,
replan a failed step a bounded number of times.

The planner role (local rules or a remote model with structured output) returns ``Plan`` steps with
``depends_on``; ``plan_levels`` layers the DAG (Kahn's algorithm: a level holds the steps whose
dependencies all ran in earlier levels); the executor runs the specialist subgraphs of one level with
``asyncio.gather``, giving a dependent step the items/order its dependencies produced as ``focus`` (so
"add volume 1 of it" resolves "it"). A step fails when it raises or finds nothing (error evidence, no
answer); it is then re-planned on its own request, at most ``Context.max_replans`` times per turn, and a
step that still fails contributes an honest "could not" answer. Steps run in subgraphs compiled without a
checkpointer of their own (``checkpointer=False``): a confirmation interrupt (cancel/return) inside a plan
step is not supported, and such a step reports that it needs a separate request.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Mapping

from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphInterrupt
from langgraph.runtime import Runtime

from core.budget import TurnBudget, call_scope
from core.context import Context
from core.deps import Deps
from core.ports import Plan, PlanStep, RouterDecision

INTENT_OF_AGENT = {"search": "search", "recommend": "recommend", "order": "order", "conversation": "faq"}

STEP_FAILED = {
    "en": "I couldn't complete this part of your request: {request}",
    "ja": "ご依頼の一部を完了できませんでした：{request}",
}


def plan_levels(plan: Plan) -> list[list[PlanStep]]:
    """Steps grouped into levels: level n holds the steps whose dependencies are all in levels < n (Kahn).

    Raises ValueError on an unknown dependency or a cycle. Order within a level follows the plan.
    """
    ids = {s.id for s in plan.steps}
    for s in plan.steps:
        unknown = [d for d in s.depends_on if d not in ids]
        if unknown:
            raise ValueError(f"step {s.id} depends on unknown steps {unknown}")
    done: set[str] = set()
    left = list(plan.steps)
    levels: list[list[PlanStep]] = []
    while left:
        level = [s for s in left if all(d in done for d in s.depends_on)]
        if not level:
            raise ValueError(f"plan has a cycle among {[s.id for s in left]}")
        levels.append(level)
        done |= {s.id for s in level}
        left = [s for s in left if s.id not in done]
    return levels


def step_failed(result: Mapping[str, Any] | BaseException | None) -> bool:
    """True when a step raised, produced no answer, or its evidence is only errors / empty lists."""
    if result is None or isinstance(result, BaseException):
        return True
    if not result.get("answer"):
        return True
    evidence = result.get("evidence") or []
    if evidence and all(e.get("kind") == "error" for e in evidence):
        return True
    if any(e.get("kind") in ("search", "recommend") for e in evidence) and not result.get("items") \
            and not result.get("orders"):
        return True
    return False


def focus_from(deps_results: list[Mapping[str, Any]], base: Mapping[str, Any]) -> dict:
    """``base`` focus updated with the items (mal_ids, first result first) and single order of dependencies."""
    focus = dict(base)
    items = [it["mal_id"] for r in deps_results for it in r.get("items") or []]
    if items:
        focus["items"] = items
        focus["items_intent"] = next(r["intent"] for r in deps_results if r.get("items"))
    order = next((r.get("focus_order_id") for r in deps_results if r.get("focus_order_id")), None)
    if order:
        focus["order_id"] = order
    return focus


def make_plan(deps: Deps, specialists: Mapping[str, Any]):
    """Node ``plan``: plan + execute a complex request; writes ``results`` (one per step, in plan order),
    ``intents``/``agents`` of the executed steps, ``plan`` (steps with status and ms), usage and timings.

    ``specialists`` maps agent name → compiled specialist subgraph (compiled with ``checkpointer=False``).
    """
    planner = deps.models.planner
    router = deps.models.router
    clause_router = getattr(router, "local", router)

    async def intent_for(step: PlanStep) -> str:
        if step.agent != "conversation":
            return INTENT_OF_AGENT[step.agent]
        d = await clause_router.aroute(step.request)
        return next((i for i in d.intents if i in ("faq", "chitchat", "handoff", "out_of_scope")), "faq")

    async def plan(state: dict, runtime: Runtime[Context], config: RunnableConfig) -> dict:
        t0 = time.perf_counter()
        ctx = runtime.context if runtime.context is not None else Context()
        text = next((str(m.content) for m in reversed(state.get("messages") or []) if getattr(m, "type", "") == "human"), "")
        locale = state.get("locale", "en")
        spent = sum(float(c.get("usd", 0.0)) for c in state.get("usage_calls") or [])
        budget = TurnBudget.from_state(state.get("budget"), ctx, spent_usd=spent)
        decision = RouterDecision(intents=state.get("intents") or ["search"], scores=state.get("scores") or {}, complex=True)
        calls: list[dict] = []
        with call_scope(budget) as scope:
            the_plan = await planner.aplan(text, decision)
        calls += scope.meter.calls
        base = {"message": text, "locale": locale, "history": [str(m.content) for m in (state.get("messages") or [])[-5:-1]],
                "max_reflections": ctx.max_reflections}
        results: dict[str, dict] = {}
        log: list[dict] = []
        replans = 0

        async def run_step(step: PlanStep, prefix: str = "") -> dict | BaseException:
            s0 = time.perf_counter()
            intent = await intent_for(step)
            dep_results = [results[d] for d in step.depends_on if d in results]
            spent_now = sum(float(c.get("usd", 0.0)) for c in calls)
            payload = {**base, "agent": step.agent, "intent": intent, "request": step.request,
                       "focus": focus_from(dep_results, state.get("focus") or {}),
                       "budget": {**budget.to_state(), "usd_left_turn": budget.usd_left_turn - spent_now,
                                  "usd_left_session": budget.usd_left_session - spent_now,
                                  "usd_left_user_day": budget.usd_left_user_day - spent_now}}
            try:
                out = await specialists[step.agent].ainvoke(payload, config, context=ctx)
                res = out["results"][-1]
            except GraphInterrupt:
                res = RuntimeError("needs confirmation")
            except Exception as exc:  # noqa: BLE001 - a failed step is replanned or reported, not fatal
                res = exc
            log.append({"id": prefix + step.id, "agent": step.agent, "request": step.request,
                        "depends_on": step.depends_on, "failed": step_failed(res),
                        "ms": round((time.perf_counter() - s0) * 1000, 2)})
            return res

        async def run_levels(p: Plan, prefix: str = "", allow_replan: bool = True) -> None:
            nonlocal replans
            for level in plan_levels(p):
                outs = await asyncio.gather(*(run_step(s, prefix) for s in level))
                for step, res in zip(level, outs):
                    if step_failed(res) and allow_replan and replans < ctx.max_replans:
                        replans += 1
                        with call_scope(budget) as rscope:
                            sub = await planner.aplan(step.request, RouterDecision(
                                intents=[await intent_for(step)], complex=False))
                        calls.extend(rscope.meter.calls)
                        sub = Plan(steps=[PlanStep(id=s.id, agent=s.agent, request=s.request,
                                                   depends_on=[*s.depends_on, *(d for d in step.depends_on if d not in s.depends_on)])
                                          for s in sub.steps])
                        inner: dict[str, dict] = {}
                        saved = dict(results)
                        await run_levels(sub, prefix=f"{prefix}{step.id}.r{replans}.", allow_replan=False)
                        inner = {k: v for k, v in results.items() if k not in saved}
                        res = next((r for r in reversed(list(inner.values())) if not step_failed(r)), res)
                    if isinstance(res, BaseException) or not res:
                        res = {"agent": step.agent, "intent": await intent_for(step),
                               "answer": STEP_FAILED.get(locale, STEP_FAILED["en"]).format(request=step.request),
                               "items": [], "orders": [], "evidence": [], "calls": [], "degraded": []}
                    results[step.id] = res

        await run_levels(the_plan)
        ordered = [results[s.id] for s in the_plan.steps if s.id in results]
        calls += [c for r in ordered for c in r.get("calls") or []]
        intents = list(dict.fromkeys(r["intent"] for r in ordered))
        return {"results": ordered, "intents": intents, "agents": list(dict.fromkeys(r["agent"] for r in ordered)),
                "plan": log, "usage_calls": calls,
                "degraded": list(dict.fromkeys(budget.degraded + [d for r in ordered for d in r.get("degraded") or []])),
                "timings_ms": {"plan": round((time.perf_counter() - t0) * 1000, 2)}}

    return plan
