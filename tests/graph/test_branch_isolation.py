"""Branch isolation in the supervisor's Send fan-out: a specialist that raises in a multi-intent turn costs only its
own part (an apology in the customer's language), the other answers are kept, and the turn is recorded as degraded
(budget report, Prometheus series, an ERROR log line with the traceback). A single-intent failure still fails the
turn: there is nothing else to keep."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from graphs.app import Assistant
from graphs.supervisor import build_supervisor
from nodes.supervisor import BRANCH_FAILED
from server.observability import GraphObserver, Metrics


class BrokenRecommender:
    """The real recommender with ``recommend`` raising, as a corrupt model file or a backend bug would."""

    def __init__(self, real):
        self._real = real

    def recommend(self, *a, **kw):
        raise RuntimeError("recommender model is corrupt")

    def __getattr__(self, name):
        return getattr(self._real, name)


def broken_assistant(deps) -> Assistant:
    d = dataclasses.replace(deps, recommender=BrokenRecommender(deps.recommender))
    return Assistant(build_supervisor(d).compile(checkpointer=InMemorySaver(), store=InMemoryStore()), d, None)


EN = "Recommend me some dark fantasy manga. Also, how much does shipping cost?"
JA = "ダークファンタジーの漫画をおすすめしてください。あと、送料はいくらですか？"


async def run(a: Assistant, text: str, thread: str, user: str = "u_ben", observer: GraphObserver | None = None) -> dict:
    cfg = a.config(thread, user)
    if observer is not None:
        cfg = {**cfg, "callbacks": [observer]}
    await a.graph.ainvoke({"messages": [HumanMessage(text)]}, cfg, context=a.context(user))
    return await a.result(thread, user)


async def test_failed_specialist_costs_only_its_part(deps, caplog):
    caplog.set_level(logging.INFO, logger="mangaassist.graph")
    a = broken_assistant(deps)
    faq_alone = await run(a, "How much does shipping cost?", "t-iso-faq")
    metrics = Metrics()
    out = await run(a, EN, "t-iso-en", observer=GraphObserver(metrics))

    assert set(out["intents"]) == {"recommend", "faq"}
    assert faq_alone["answer"] and faq_alone["answer"] in out["answer"]  # the other answer is kept, unchanged
    assert BRANCH_FAILED["en"]["recommend"] in out["answer"]
    assert "specialist_failed" in out["budget"]["degraded"]
    assert out["items"] == []  # no picks are claimed
    body = metrics.render()[0].decode()
    assert 'mangaassist_budget_degradations_total{step="specialist_failed"} 1.0' in body
    failed = [r for r in caplog.records if r.name == "mangaassist.graph" and getattr(r, "outcome", "") == "degraded"]
    assert len(failed) == 1 and failed[0].levelno == logging.ERROR
    rec = failed[0]
    assert rec.agent == "recommend" and rec.thread_id == "t-iso-en" and rec.error == "RuntimeError"
    assert rec.exc_info and "recommender model is corrupt" in str(rec.exc_info[1])  # traceback logged

    again = await run(a, "How much does shipping cost?", "t-iso-en")  # the thread is not left stuck
    assert again["answer"] == faq_alone["answer"] and "specialist_failed" not in again["budget"]["degraded"]


async def test_apology_is_in_the_customers_language(deps):
    a = broken_assistant(deps)
    faq_alone = await run(a, "送料はいくらですか？", "t-iso-ja-faq", user="u_aiko")
    out = await run(a, JA, "t-iso-ja", user="u_aiko")
    assert set(out["intents"]) == {"recommend", "faq"}
    assert BRANCH_FAILED["ja"]["recommend"] in out["answer"]
    assert "送料" in faq_alone["answer"] and faq_alone["answer"] in out["answer"]
    assert "specialist_failed" in out["budget"]["degraded"]


async def test_single_intent_failure_still_fails_the_turn(deps):
    a = broken_assistant(deps)
    with pytest.raises(RuntimeError, match="recommender model is corrupt"):
        await run(a, "Recommend me some dark fantasy manga", "t-iso-one")


async def test_failed_plan_step_is_logged_and_recorded(deps, caplog):
    from tests.graph.test_budget_graph import run_turn, sim_assistant
    from tests.graph.test_planner_dag import COMPLEX, P, ScriptedPlanner, with_planner

    caplog.set_level(logging.INFO, logger="mangaassist.graph")
    plan = P(("s1", "search", "Do you have Berserk?", ()), ("s2", "recommend", "recommend dark fantasy manga", ()))
    broken = dataclasses.replace(deps, recommender=BrokenRecommender(deps.recommender))
    a = with_planner(sim_assistant(broken), ScriptedPlanner(plan))
    out = await run_turn(a, COMPLEX, "t-iso-plan", max_replans=0)
    assert "Berserk" in out["answer"] and "recommend dark fantasy manga" in out["answer"]  # the step's apology
    assert "specialist_failed" in out["budget"]["degraded"]
    failed = [r for r in caplog.records if getattr(r, "outcome", "") == "degraded"]
    assert len(failed) == 1 and failed[0].agent == "recommend" and failed[0].node == "plan"
    assert failed[0].exc_info and "recommender model is corrupt" in str(failed[0].exc_info[1])


async def test_a_confirmation_interrupt_in_one_branch_is_not_a_failure(assistant, demo, caplog):
    caplog.set_level(logging.INFO, logger="mangaassist.graph")
    oid = demo["u_ben"]["processing"][0]
    asked = await assistant.turn(f"Do you have Berserk? Also, please cancel order {oid}", user_id="u_ben")
    assert asked["interrupt"] and asked["interrupt"]["order_id"] == oid
    done = await assistant.turn("yes", thread_id=asked["thread_id"], user_id="u_ben")
    assert done["interrupt"] is None and oid in done["answer"] and "Berserk" in done["answer"]
    assert "specialist_failed" not in done["budget"]["degraded"]
    assert not [r for r in caplog.records if getattr(r, "outcome", "") == "degraded"]
