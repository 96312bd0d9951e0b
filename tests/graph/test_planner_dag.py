"""Planner–executor tests: DAG layering and validation (pure), and the plan node on the real graph with
simulated models: independent steps run in parallel, dependent steps see their dependencies' items, a failed
step is re-planned a bounded number of times."""

from __future__ import annotations

import dataclasses

import pytest

from core.ports import Plan, PlanStep
from nodes.plan import focus_from, namespaced, plan_levels, step_failed
from tests.graph.test_budget_graph import run_turn, sim_assistant
from tools.backends.models.bedrock import validate_plan
from tools.backends.models.resilience import MalformedOutput


def P(*steps):
    return Plan(steps=[PlanStep(id=i, agent=a, request=r, depends_on=list(d)) for i, a, r, d in steps])


def test_levels_group_independent_steps():
    plan = P(("s1", "search", "Berserk", ()), ("s2", "conversation", "returns?", ()), ("s3", "recommend", "like it", ("s1",)),
             ("s4", "order", "status", ("s3", "s2")))
    assert [[s.id for s in lvl] for lvl in plan_levels(plan)] == [["s1", "s2"], ["s3"], ["s4"]]


def test_levels_reject_cycles_and_unknown_steps():
    with pytest.raises(ValueError, match="cycle"):
        plan_levels(P(("a", "search", "x", ("b",)), ("b", "search", "y", ("a",))))
    with pytest.raises(ValueError, match="unknown"):
        plan_levels(P(("a", "search", "x", ("zz",))))


def test_validate_plan_rejects_forward_and_duplicate_ids():
    with pytest.raises(MalformedOutput):
        validate_plan(P(("a", "search", "x", ("b",)), ("b", "search", "y", ())))
    with pytest.raises(MalformedOutput):
        validate_plan(P(("a", "search", "x", ()), ("a", "search", "y", ())))
    with pytest.raises(MalformedOutput):
        validate_plan(Plan(steps=[]))


def test_step_failed_and_focus():
    assert step_failed(RuntimeError("x")) and step_failed({"answer": ""})
    assert step_failed({"answer": "none", "evidence": [{"kind": "error"}]})
    assert step_failed({"answer": "no hits", "evidence": [{"kind": "search", "items": []}], "items": []})
    assert not step_failed({"answer": "ok", "evidence": [{"kind": "policy"}]})
    f = focus_from([{"intent": "recommend", "items": [{"mal_id": 7, "title": "A"}, {"mal_id": 9}]}], {"order_id": "MA-1"})
    assert f == {"order_id": "MA-1", "items": [7, 9], "items_intent": "recommend", "referent": {"mal_id": 7, "title": "A"}}


def test_namespaced_sub_plan_keeps_outer_dependencies():
    sub = namespaced(P(("s1", "search", "x", ()), ("s2", "order", "y", ("s1",))), "s2.r1.", ["s1"])
    assert [(s.id, s.depends_on) for s in sub.steps] == [("s2.r1.s1", ["s1"]), ("s2.r1.s2", ["s2.r1.s1", "s1"])]
    assert [[s.id for s in lvl] for lvl in plan_levels(sub, done={"s1"})] == [["s2.r1.s1"], ["s2.r1.s2"]]


class ScriptedPlanner:
    """Planner role returning scripted plans in turn (records the requests it was asked to plan)."""

    def __init__(self, *plans):
        self.plans, self.asked = list(plans), []
        self.expected_ms = 0.0

    async def aplan(self, text, decision, history=(), focus=None):
        self.asked.append(text)
        return self.plans.pop(0)


def with_planner(a, planner):
    from langgraph.checkpoint.memory import InMemorySaver

    from graphs.app import Assistant
    from graphs.supervisor import build_supervisor

    d = dataclasses.replace(a.deps, models=dataclasses.replace(a.deps.models, planner=planner))
    return Assistant(build_supervisor(d).compile(checkpointer=InMemorySaver()), d, None)


COMPLEX = "find a manga like Attack on Titan and add volume 1 of it to my cart"


async def plan_update(a, text, thread, user="u_test", **ctx) -> dict:
    """Run one turn and return what the plan node wrote (its ``results`` are cleared again by finalize)."""
    from langchain_core.messages import HumanMessage

    out = {}
    async for update in a.graph.astream({"messages": [HumanMessage(text)]}, a.config(thread, user),
                                        context=a.context(user, **ctx), stream_mode="updates"):
        out.update(update.get("plan") or {})
    return out


async def test_complex_request_goes_through_the_planner_and_dependencies_get_items(deps):  # noqa: F811
    a = sim_assistant(deps)
    out = await run_turn(a, COMPLEX, "t-plan", user="u_ben")  # a customer: the second step puts a volume in a cart
    assert "plan" in out["timings_ms"]
    assert any(c["role"] == "planner" and c["outcome"] == "ok" for c in out["usage"]["calls"])
    snap = await a.graph.aget_state(a.config("t-plan", "u_ben"))
    log = snap.values["plan"]
    assert len(log) == 2 and log[1]["depends_on"] == [log[0]["id"]]


async def test_independent_steps_run_in_parallel(deps):  # noqa: F811
    plan = P(("s1", "search", "Do you have Berserk?", ()), ("s2", "conversation", "What is your return policy?", ()),
             ("s3", "recommend", "something like it", ("s1",)))
    a = with_planner(sim_assistant(deps, per_model={"sim:claude-3-5-sonnet": {"latency_ms": 800}}), ScriptedPlanner(plan))
    out = await run_turn(a, COMPLEX, "t-par-plan", latency_budget_ms=6000)
    assert [r for r in out["agents"]] == ["search", "conversation", "recommend"]
    # three 0.8 s writers in two levels: ~1.6 s, not 2.4 s
    assert 1600 <= out["timings_ms"]["plan"] < 2200, out["timings_ms"]


async def test_failed_step_is_replanned_once(deps):  # noqa: F811
    first = P(("s1", "order", "where is order MA-99999999", ()))
    second = P(("s1", "conversation", "How do I track my delivery?", ()))
    planner = ScriptedPlanner(first, second)
    a = with_planner(sim_assistant(deps), planner)
    out = await run_turn(a, COMPLEX, "t-replan")
    assert planner.asked == [COMPLEX, "where is order MA-99999999"]
    snap = await a.graph.aget_state(a.config("t-replan", "u_test"))
    ids = [s["id"] for s in snap.values["plan"]]
    assert ids == ["s1", "s1.r1.s1"] and snap.values["plan"][0]["failed"] and not snap.values["plan"][1]["failed"]
    assert out["agents"] == ["conversation"]


async def test_replanned_dependent_step_does_not_collide_with_its_dependency(deps):  # noqa: F811
    first = P(("s1", "search", "Do you have Berserk?", ()), ("s2", "order", "where is order MA-99999999", ("s1",)))
    second = P(("s1", "conversation", "How do I track my delivery?", ()))  # the sub-plan's own ids start at s1 again
    a = with_planner(sim_assistant(deps), ScriptedPlanner(first, second))
    out = await run_turn(a, COMPLEX, "t-replan-dep")
    snap = await a.graph.aget_state(a.config("t-replan-dep", "u_test"))
    log = snap.values["plan"]
    assert [s["id"] for s in log] == ["s1", "s2", "s2.r1.s1"]
    assert log[2]["depends_on"] == ["s1"] and not log[2]["failed"]  # the outer s1, not itself
    assert out["agents"] == ["search", "conversation"] and "Berserk" in out["answer"]


async def test_replan_keeps_the_results_of_every_step(deps):  # noqa: F811
    first = P(("s1", "search", "Do you have Berserk?", ()), ("s2", "order", "where is order MA-99999999", ()),
              ("s3", "search", "show me the first one", ("s1",)))
    second = P(("s1", "conversation", "How do I track my delivery?", ()))
    a = with_planner(sim_assistant(deps), ScriptedPlanner(first, second))
    wrote = await plan_update(a, COMPLEX, "t-replan-keep")
    results = wrote["results"]
    assert [r["agent"] for r in results] == ["search", "conversation", "search"]
    assert results[0]["items"][0]["title"] == "Berserk"
    assert results[2]["items"][0]["mal_id"] == results[0]["items"][0]["mal_id"]  # s3 saw s1's items, not the sub-step's


async def test_dependent_step_gets_its_dependencys_first_item_as_focus(assistant):
    wrote = await plan_update(assistant, COMPLEX, "t-plan-focus", user="u_ben")
    first, second = wrote["results"]
    assert first["items"], first
    assert second["items"] and second["items"][0]["mal_id"] == first["items"][0]["mal_id"], (first["items"][:2], second)


async def test_dependent_recommend_step_likes_its_dependencys_first_item(deps):  # noqa: F811
    plan = P(("s1", "search", "Do you have Berserk?", ()), ("s2", "recommend", "recommend something like it", ("s1",)))
    a = with_planner(sim_assistant(deps), ScriptedPlanner(plan))
    wrote = await plan_update(a, COMPLEX, "t-plan-rec")
    found, picks = wrote["results"]
    seeds = [e for e in picks["evidence"] if e.get("kind") == "recommend"][0]["seeds"]
    assert [s["mal_id"] for s in seeds] == [found["items"][0]["mal_id"]] and found["items"][0]["title"] == "Berserk"
