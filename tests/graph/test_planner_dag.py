"""Planner–executor tests: DAG layering and validation (pure), and the plan node on the real graph with
simulated models: independent steps run in parallel, dependent steps see their dependencies' items, a failed
step is re-planned a bounded number of times."""

from __future__ import annotations

import dataclasses

import pytest

from core.ports import Plan, PlanStep
from nodes.plan import focus_from, plan_levels, step_failed
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
    f = focus_from([{"intent": "recommend", "items": [{"mal_id": 7}, {"mal_id": 9}]}], {"order_id": "MA-1"})
    assert f == {"order_id": "MA-1", "items": [7, 9], "items_intent": "recommend"}


class ScriptedPlanner:
    """Planner role returning scripted plans in turn (records the requests it was asked to plan)."""

    def __init__(self, *plans):
        self.plans, self.asked = list(plans), []
        self.expected_ms = 0.0

    async def aplan(self, text, decision):
        self.asked.append(text)
        return self.plans.pop(0)


def with_planner(a, planner):
    from langgraph.checkpoint.memory import InMemorySaver

    from graphs.app import Assistant
    from graphs.supervisor import build_supervisor

    d = dataclasses.replace(a.deps, models=dataclasses.replace(a.deps.models, planner=planner))
    return Assistant(build_supervisor(d).compile(checkpointer=InMemorySaver()), d, None)


COMPLEX = "find a manga like Attack on Titan and add volume 1 of it to my cart"


async def test_complex_request_goes_through_the_planner_and_dependencies_get_items(deps):  # noqa: F811
    a = sim_assistant(deps)
    out = await run_turn(a, COMPLEX, "t-plan")
    assert "plan" in out["timings_ms"]
    assert any(c["role"] == "planner" and c["outcome"] == "ok" for c in out["usage"]["calls"])
    snap = await a.graph.aget_state(a.config("t-plan", "u_test"))
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
