"""The per-model circuit breaker: open after N consecutive model faults, half-open trial after the open period,
closed again on success; and only real model faults count (throttling, 5xx, connection errors, the model's own
timeout), never a timeout caused by the turn's own deadline. Chain-level tests drive real ChatBedrockConverse
calls (botocore Stubber, a silent TCP server for timeouts)."""

from __future__ import annotations

import asyncio

import pytest
from botocore.stub import Stubber
from langchain_aws import ChatBedrockConverse

from core.budget import TurnBudget, call_scope
from core.ports import RouterDecision
from core.settings import Settings
from nodes.prompts import router_messages
from tests.unit import test_bedrock_wire as wire
from tests.unit.test_bedrock_wire import HAIKU, LocalStub, client, tool_use
from tools.backends.models.bedrock import FallbackChatModel, structured_call
from tools.backends.models.resilience import CircuitBreaker, FallbackChain, Tier

silent_server = wire.silent_server
"""A TCP server that accepts and never answers (the fixture of the wire tests)."""


class Clock:
    """A settable monotonic clock (s)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


# ---- the breaker alone -------------------------------------------------------------------------------


def test_breaker_opens_after_consecutive_failures_then_half_opens_and_closes_on_success():
    clock = Clock()
    b = CircuitBreaker(failures=3, open_s=30.0, clock=clock)
    for _ in range(2):
        assert b.allow()
        b.failure()
    assert b.state == "closed" and b.allow()
    b.failure()
    assert b.state == "open" and not b.allow()
    clock.t += 29.9
    assert not b.allow()
    clock.t += 0.2
    assert b.state == "half_open"
    assert b.allow()          # the one trial call
    assert not b.allow()      # concurrent callers wait for its verdict
    b.success()
    assert b.state == "closed" and b.allow() and b.consecutive == 0


def test_half_open_trial_that_fails_reopens_for_a_full_period():
    clock = Clock()
    b = CircuitBreaker(failures=2, open_s=10.0, clock=clock)
    b.failure(), b.failure()
    clock.t += 10.5
    assert b.allow()
    b.failure()
    assert b.state == "open" and not b.allow()
    clock.t += 9.9
    assert not b.allow()
    clock.t += 0.2
    assert b.allow()


def test_a_success_between_failures_resets_the_count():
    b = CircuitBreaker(failures=3, open_s=30.0, clock=Clock())
    b.failure(), b.failure()
    b.success()
    b.failure(), b.failure()
    assert b.state == "closed"


def test_half_open_trial_without_a_verdict_is_given_back():
    clock = Clock()
    b = CircuitBreaker(failures=1, open_s=5.0, clock=clock)
    b.failure()
    clock.t += 6
    assert b.allow() and not b.allow()
    b.release()               # the trial ended on our side (deadline): the next caller may try
    assert b.allow()


# ---- the breaker inside a fallback chain, on the wire ---------------------------------------------------


def chain(c, breaker: CircuitBreaker, local: LocalStub, timeout_s: float = 10.0) -> FallbackChain:
    tier = Tier("haiku@us-east-1", HAIKU, structured_call(ChatBedrockConverse(model=HAIKU, region_name="us-east-1", client=c,
                                                                               temperature=0),
                                                           RouterDecision, lambda p: router_messages(p["text"], [])),
                expected_ms=0.0, breaker=breaker)

    async def loc(p, t):
        return await local.aroute(p["text"]), None

    return FallbackChain("router", [tier, Tier("local:router", "local:router", loc, local=True)],
                         prices=Settings().model_prices, retries=1, timeout_s=timeout_s,
                         backoff_initial_s=0.01, backoff_max_s=0.02)


async def test_three_throttled_turns_open_the_breaker_and_the_fourth_skips_the_model():
    a = client("us-east-1")
    breaker, local = CircuitBreaker(3, 30.0), LocalStub()
    ch = chain(a, breaker, local)
    with Stubber(a) as st:
        for _ in range(3):
            st.add_client_error("converse", service_error_code="ThrottlingException", service_message="slow down",
                                http_status_code=429)
        for _ in range(3):
            with call_scope(TurnBudget.start(3000)) as scope:
                await ch.acall({"text": "hi"})
            assert scope.meter.calls[0]["outcome"] == "error:throttled"
        st.assert_no_pending_responses()
        assert breaker.state == "open"
        with call_scope(TurnBudget.start(3000)) as scope:   # no response queued: a call would fail the Stubber
            d = await ch.acall({"text": "hi"})
    assert d.intents == ["faq"] and local.asked == 4
    assert [c["outcome"] for c in scope.meter.calls] == ["skipped:circuit_open", "ok"]


async def test_5xx_and_connection_errors_count_as_model_faults():
    a = client("us-east-1")
    breaker = CircuitBreaker(2, 30.0)
    ch = chain(a, breaker, LocalStub())
    with Stubber(a) as st:
        st.add_client_error("converse", service_error_code="ServiceUnavailableException", service_message="down",
                            http_status_code=503)
        st.add_client_error("converse", service_error_code="InternalServerException", service_message="oops",
                            http_status_code=500)
        for _ in range(2):
            with call_scope(TurnBudget.start(3000)):
                await ch.acall({"text": "hi"})
    assert breaker.state == "open"
    refused = client("us-east-1", endpoint="http://127.0.0.1:9")   # nothing listens on the discard port
    breaker2 = CircuitBreaker(1, 30.0)
    with call_scope(TurnBudget.start(3000)) as scope:
        await chain(refused, breaker2, LocalStub()).acall({"text": "hi"})
    assert scope.meter.calls[0]["outcome"] == "error:connection" and breaker2.state == "open"


async def test_budget_starved_turns_do_not_open_a_healthy_models_breaker(silent_server):
    """Three turns whose own deadline cuts the call (the model is slow, not faulty) and one turn with no time
    left at all: the breaker stays closed, so the next turn with time still reaches the model."""
    slow = client("us-east-1", endpoint=silent_server, read_timeout=2.0)
    breaker, local = CircuitBreaker(3, 30.0), LocalStub()
    ch = chain(slow, breaker, local)
    for _ in range(3):
        with call_scope(TurnBudget.start(450)) as scope:      # 450 - 150 ms reserve: cut after ~300 ms
            await ch.acall({"text": "hi"})
        assert scope.meter.calls[0]["outcome"] == "error:timeout"
    with call_scope(TurnBudget.start(3000, deadline_epoch_ms=0.0)):   # deadline already passed
        await ch.acall({"text": "hi"})
    assert breaker.state == "closed" and breaker.consecutive == 0
    a = client("us-east-1")
    healthy = chain(a, breaker, local)
    with Stubber(a) as st:
        st.add_response("converse", tool_use("RouterDecision", {"intents": ["search"], "scores": {"search": 0.9}}))
        with call_scope(TurnBudget.start(3000)) as scope:
            d = await healthy.acall({"text": "Do you have Berserk?"})
    assert d.intents == ["search"] and scope.meter.calls[0]["outcome"] == "ok"


async def test_the_models_own_timeout_counts(silent_server):
    """The call outlives the model timeout (0.3 s) while the turn still has seconds left: a model fault."""
    slow = client("us-east-1", endpoint=silent_server, read_timeout=2.0)
    breaker = CircuitBreaker(2, 30.0)
    ch = chain(slow, breaker, LocalStub(), timeout_s=0.3)
    for _ in range(2):
        with call_scope(TurnBudget.start(5000)) as scope:
            await ch.acall({"text": "hi"})
        assert scope.meter.calls[0]["outcome"] == "error:read_timeout"
    assert breaker.state == "open"


async def test_a_half_open_trial_cut_by_the_deadline_leaves_the_breaker_half_open(silent_server):
    clock = Clock()
    breaker = CircuitBreaker(1, 5.0, clock=clock)
    breaker.failure()
    clock.t += 6
    slow = client("us-east-1", endpoint=silent_server, read_timeout=2.0)
    with call_scope(TurnBudget.start(400)):
        await chain(slow, breaker, LocalStub()).acall({"text": "hi"})
    assert breaker.state == "half_open" and breaker.allow()


async def test_streaming_writer_cut_by_the_deadline_does_not_count():
    """The writer streams from a model that stalls after its first chunk; the turn's deadline ends the stream
    (partial answer): not a fault of the model."""
    from langchain_core.messages import AIMessageChunk, HumanMessage

    async def stalls(messages):
        yield AIMessageChunk(content="Berserk ")
        await asyncio.sleep(5)
        yield AIMessageChunk(content="never")

    async def never_used(messages):
        raise AssertionError("the local writer is not reached once text was shown")
        yield  # pragma: no cover

    breaker = CircuitBreaker(1, 30.0)
    writer = FallbackChatModel(chain=FallbackChain("writer", [
        Tier("sonnet@us-east-1", "sonnet", None, breaker=breaker, stream=stalls),  # type: ignore[arg-type]
        Tier("local:writer", "local:writer", None, local=True, stream=never_used)]))  # type: ignore[arg-type]
    with call_scope(TurnBudget.start(450)) as scope:
        msg = await writer.ainvoke([HumanMessage("Berserk?")])
    assert msg.text == "Berserk " and "partial_answer" in scope.budget.degraded
    assert scope.meter.calls[0]["outcome"] == "error:timeout"
    assert breaker.state == "closed"


@pytest.mark.parametrize("kind_of_error", ["malformed", "invalid_request"])
async def test_an_answer_that_is_not_usable_is_not_a_model_fault(kind_of_error):
    """Malformed structured output or a 400 for our request: the model answered, so the breaker does not open."""
    a = client("us-east-1")
    breaker = CircuitBreaker(1, 30.0)
    with Stubber(a) as st:
        if kind_of_error == "malformed":
            st.add_response("converse", tool_use("RouterDecision", {"intents": ["weather"], "scores": "high"}))
        else:
            st.add_client_error("converse", service_error_code="ValidationException", service_message="too long",
                                http_status_code=400)
        with call_scope(TurnBudget.start(3000)) as scope:
            await chain(a, breaker, LocalStub()).acall({"text": "hi"})
    assert scope.meter.calls[0]["outcome"] == f"error:{kind_of_error}"
    assert breaker.state == "closed"
