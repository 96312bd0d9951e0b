"""Planner–executor node for complex requests: plan a DAG of agent steps, run each level's steps in parallel,
replan a failed step a bounded number of times.

The planner role (local rules or a remote model with structured output) returns ``Plan`` steps with
``depends_on``; ``plan_levels`` layers the DAG (Kahn's algorithm: a level holds the steps whose
dependencies all ran in earlier levels); the executor runs the specialist subgraphs of one level with
``asyncio.gather``, giving a dependent step the items/order its dependencies produced as ``focus``, the
first item also as ``focus.referent`` (so "add volume 1 of it" resolves "it"). A step fails when it raises or
finds nothing (error evidence, no answer); it is then re-planned on its own request, at most
``Context.max_replans`` times per turn: the sub-plan's ids are namespaced under the failed step
(``s2.r1.s1``), so they never collide with the outer plan's, and every step's result is kept under its own id.
A step that still fails contributes an honest "could not" answer; a step whose specialist raised is logged at
ERROR with its traceback and the turn records the ``specialist_failed`` degrade step. Steps run in subgraphs compiled without a
checkpointer of their own (``checkpointer=False``): a confirmation interrupt (cancel/return) inside a plan
step is not supported, and such a step reports that it needs a separate request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Iterable, Mapping, Sequence

from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphInterrupt
from langgraph.runtime import Runtime

from core.agents import REGISTRY, AgentRegistry
from core.budget import TurnBudget, call_scope
from core.context import Context
from core.deps import Deps
from core.ports import Plan, PlanStep, RouterDecision
from nodes.supervisor import BRANCH_FAILED_STEP

graph_log = logging.getLogger("mangaassist.graph")

STEP_FAILED = {
    "en": "I couldn't complete this part of your request: {request}",
    "ja": "ご依頼の一部を完了できませんでした：{request}",
}


def plan_levels(plan: Plan, done: Iterable[str] = ()) -> list[list[PlanStep]]:
    """Steps grouped into levels: level n holds the steps whose dependencies are all in levels < n (Kahn).

    ``done``: ids of steps that already ran outside this plan (a sub-plan may depend on them). Raises
    ValueError on an unknown dependency or a cycle. Order within a level follows the plan.
    """
    done = set(done)
    ids = {s.id for s in plan.steps}
    for s in plan.steps:
        unknown = [d for d in s.depends_on if d not in ids and d not in done]
        if unknown:
            raise ValueError(f"step {s.id} depends on unknown steps {unknown}")
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


def namespaced(sub: Plan, prefix: str, outer_depends_on: Sequence[str] = ()) -> Plan:
    """A re-plan of one failed step, made safe to run beside the outer plan: every step id is prefixed
    (``s1`` → ``s2.r1.s1`` for ``prefix`` "s2.r1."), dependencies inside the sub-plan follow the renaming, and
    every step also depends on ``outer_depends_on`` (the failed step's dependencies, already done)."""
    own = {s.id for s in sub.steps}
    return Plan(steps=[PlanStep(id=prefix + s.id, agent=s.agent, request=s.request, depends_on=list(dict.fromkeys(
        [*(prefix + d if d in own else d for d in s.depends_on), *outer_depends_on])))
        for s in sub.steps])


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


def focus_from(deps_results: Sequence[Mapping[str, Any]], base: Mapping[str, Any]) -> dict:
    """``base`` focus updated with the items (mal_ids, first result first) and single order of dependencies;
    ``referent`` {mal_id, title} is the first item, the one a back-reference ("it", "それ") in a dependent step
    means."""
    focus = dict(base)
    found = [it for r in deps_results for it in r.get("items") or []]
    if found:
        focus["items"] = [it["mal_id"] for it in found]
        focus["items_intent"] = next(r["intent"] for r in deps_results if r.get("items"))
        focus["referent"] = {"mal_id": found[0]["mal_id"], "title": found[0].get("title", "")}
    order = next((r.get("focus_order_id") for r in deps_results if r.get("focus_order_id")), None)
    if order:
        focus["order_id"] = order
    return focus


def make_plan(deps: Deps, specialists: Mapping[str, Any], registry: AgentRegistry = REGISTRY):
    """Node ``plan``: plan + execute a complex request; writes ``results`` (one per step, in plan order),
    ``intents``/``agents`` of the executed steps, ``plan`` (steps with status and ms), usage and timings.

    ``specialists`` maps agent name → compiled specialist subgraph (compiled with ``checkpointer=False``). A step's
    intent is its agent's only intent, else the first of the agent's intents the router finds in the step's
    request, else the agent's ``plan_intent`` (``registry``, core/agents.py).
    """
    planner = deps.models.planner
    router = deps.models.router
    clause_router = getattr(router, "local", router)

    async def intent_for(step: PlanStep) -> str:
        spec = registry[step.agent]
        if len(spec.intents) == 1:
            return spec.plan_intent
        d = await clause_router.aroute(step.request)
        return next((i for i in d.intents if i in spec.intents), spec.plan_intent)

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
            the_plan = await planner.aplan(text, decision, [str(m.content) for m in (state.get("messages") or [])[-5:-1]],
                                           state.get("focus") or {})
        calls += scope.meter.calls
        base = {"message": text, "locale": locale, "history": [str(m.content) for m in (state.get("messages") or [])[-5:-1]],
                "max_reflections": ctx.max_reflections, "turn": int(state.get("turn") or 0)}
        results: dict[str, dict] = {}  # every step's result under its own (namespaced) id
        shown: dict[str, list[dict]] = {}  # a replanned step → the successful results of its sub-plan
        failed: set[str] = set()  # ids of steps whose final result is a failure
        raised: set[str] = set()  # ids of steps whose specialist raised (logged with its traceback)
        ran: list[Mapping[str, Any]] = []  # every result a step returned (its model calls and degrade steps are booked)
        log: list[dict] = []
        replans = 0

        async def run_step(step: PlanStep) -> dict | BaseException:
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
                raised.add(step.id)
                thread_id = str((config.get("configurable") or {}).get("thread_id", ""))
                graph_log.error("plan step %s (%s agent) failed (%s)", step.id, step.agent, type(exc).__name__,
                                exc_info=(type(exc), exc, exc.__traceback__),
                                extra={"thread_id": thread_id, "node": "plan", "kind": "branch", "agent": step.agent,
                                       "intent": intent, "step": step.id, "outcome": "degraded",
                                       "error": type(exc).__name__})
            if isinstance(res, Mapping):
                ran.append(res)
            log.append({"id": step.id, "agent": step.agent, "request": step.request,
                        "depends_on": step.depends_on, "failed": step_failed(res),
                        "ms": round((time.perf_counter() - s0) * 1000, 2)})
            return res

        async def replan(step: PlanStep) -> Plan:
            with call_scope(budget) as rscope:
                sub = await planner.aplan(step.request, RouterDecision(intents=[await intent_for(step)], complex=False))
            calls.extend(rscope.meter.calls)
            return namespaced(sub, f"{step.id}.r{replans}.", step.depends_on)

        async def run_levels(p: Plan, allow_replan: bool = True) -> None:
            nonlocal replans
            for level in plan_levels(p, done=results.keys()):
                outs = await asyncio.gather(*(run_step(s) for s in level))
                for step, res in zip(level, outs):
                    if step_failed(res) and allow_replan and replans < ctx.max_replans:
                        replans += 1
                        sub = await replan(step)
                        try:
                            await run_levels(sub, allow_replan=False)
                        except ValueError as exc:  # a malformed sub-plan (cycle, unknown step) leaves the step failed
                            log.append({"id": f"{step.id}.r{replans}", "agent": step.agent, "request": step.request,
                                        "depends_on": step.depends_on, "failed": True, "ms": 0.0, "error": str(exc)})
                        ok = [results[s.id] for s in sub.steps if s.id in results and s.id not in failed]
                        if ok:
                            shown[step.id] = ok
                            res = ok[-1]  # what the failed step's dependents see
                    if step_failed(res):
                        failed.add(step.id)
                    if isinstance(res, BaseException) or not res:
                        res = {"agent": step.agent, "intent": await intent_for(step),
                               "answer": STEP_FAILED.get(locale, STEP_FAILED["en"]).format(request=step.request),
                               "items": [], "orders": [], "evidence": [], "calls": [],
                               "degraded": [BRANCH_FAILED_STEP] if step.id in raised else []}
                    results[step.id] = res

        await run_levels(the_plan)
        ordered = [r for s in the_plan.steps if s.id in results for r in shown.get(s.id) or [results[s.id]]]
        calls += [c for r in ran for c in r.get("calls") or []]
        intents = list(dict.fromkeys(r["intent"] for r in ordered))
        return {"results": ordered, "intents": intents, "agents": list(dict.fromkeys(r["agent"] for r in ordered)),
                "plan": log, "usage_calls": calls,
                "degraded": list(dict.fromkeys(budget.degraded + [d for r in [*ran, *ordered] for d in r.get("degraded") or []])),
                "timings_ms": {"plan": round((time.perf_counter() - t0) * 1000, 2)}}

    return plan
