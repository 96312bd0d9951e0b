"""Wire-level tests of the bedrock profile: real ChatBedrockConverse over boto3 clients driven by botocore's
Stubber (Converse response shapes), a real socket that never answers (read timeout), and credential checks."""

from __future__ import annotations

import asyncio
import socket
import threading

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber
from langchain_aws import ChatBedrockConverse
from langchain_core.messages import AIMessage

from core.budget import TurnBudget, call_scope
from core.errors import ConfigurationError
from core.ports import Critique, RouterDecision
from core.settings import Settings
from tools.backends.models.bedrock import (
    build_bedrock_models,
    check_credentials,
    clean_tool_calls,
    is_provider_model,
    structured_call,
)
from tools.backends.models.resilience import FallbackChain, MalformedOutput, Tier

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
SONNET = "anthropic.claude-3-5-sonnet-20240620-v1:0"


def client(region: str, endpoint: str | None = None, read_timeout: float = 5.0):
    cfg = Config(read_timeout=read_timeout, connect_timeout=1, retries={"max_attempts": 1})
    return boto3.client("bedrock-runtime", region_name=region, config=cfg, endpoint_url=endpoint,
                        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")


def tool_use(name: str, payload: dict, tin: int = 120, tout: int = 30) -> dict:
    return {"output": {"message": {"role": "assistant", "content": [
        {"toolUse": {"toolUseId": "tooluse_1", "name": name, "input": payload}}]}},
        "stopReason": "tool_use", "usage": {"inputTokens": tin, "outputTokens": tout, "totalTokens": tin + tout},
        "metrics": {"latencyMs": 321}}


def text_reply(text: str, tin: int = 800, tout: int = 90) -> dict:
    return {"output": {"message": {"role": "assistant", "content": [{"text": text}]}}, "stopReason": "end_turn",
            "usage": {"inputTokens": tin, "outputTokens": tout, "totalTokens": tin + tout}, "metrics": {"latencyMs": 900}}


class LocalStub:
    """The local-profile role the chain falls back to last (records that it was asked)."""

    def __init__(self):
        self.asked = 0

    async def aroute(self, text, history=(), focus=None):
        self.asked += 1
        return RouterDecision(intents=["faq"], scores={"faq": 1.0})


def router_chain(clients: dict, local: LocalStub, settings: Settings) -> FallbackChain:
    from nodes.prompts import router_messages

    tiers = [Tier(f"haiku@{r}", HAIKU, structured_call(ChatBedrockConverse(model=HAIKU, region_name=r, client=c, temperature=0),
                                                        RouterDecision, lambda p: router_messages(p["text"], [])))
             for r, c in clients.items()]

    async def loc(p, t):
        return await local.aroute(p["text"]), None

    tiers.append(Tier("local:router", "local:router", loc, local=True))
    return FallbackChain("router", tiers, prices=settings.model_prices, retries=2, backoff_initial_s=0.01, backoff_max_s=0.02)


async def test_router_structured_output_and_usage_priced_exactly():
    a = client("us-east-1")
    with Stubber(a) as st:
        st.add_response("converse", tool_use("RouterDecision", {"intents": ["search", "faq"], "scores": {"search": 0.9, "faq": 0.7}}, 120, 30))
        chain = router_chain({"us-east-1": a}, LocalStub(), Settings())
        with call_scope(TurnBudget.start(3000)) as scope:
            d = await chain.acall({"text": "Do you have Berserk and how much is shipping?"})
        st.assert_no_pending_responses()
    assert d.intents == ["search", "faq"]
    [call] = scope.meter.calls
    assert (call["input_tokens"], call["output_tokens"], call["outcome"]) == (120, 30, "ok")
    assert call["usd"] == pytest.approx((120 * 0.25 + 30 * 1.25) / 1e6)


async def test_throttling_retries_then_falls_back_to_other_region():
    a, b = client("us-east-1"), client("us-west-2")
    local = LocalStub()
    with Stubber(a) as sa, Stubber(b) as sb:
        for _ in range(2):  # model_retries = 2 attempts on the throttled region
            sa.add_client_error("converse", service_error_code="ThrottlingException", service_message="Too many requests",
                                http_status_code=429)
        sb.add_response("converse", tool_use("RouterDecision", {"intents": ["order"], "scores": {"order": 0.95}}))
        with call_scope(TurnBudget.start(3000)) as scope:
            d = await router_chain({"us-east-1": a, "us-west-2": b}, local, Settings()).acall({"text": "where is my order"})
        sa.assert_no_pending_responses()
        sb.assert_no_pending_responses()
    assert d.intents == ["order"] and local.asked == 0
    outcomes = [(c["model"], c["outcome"], c["attempts"]) for c in scope.meter.calls]
    assert outcomes == [(HAIKU, "error:throttled", 2), (HAIKU, "ok", 1)]


async def test_malformed_structured_output_falls_back_and_is_still_billed():
    a = client("us-east-1")
    local = LocalStub()
    with Stubber(a) as st:
        st.add_response("converse", tool_use("RouterDecision", {"intents": ["weather"], "scores": "high"}, 100, 10))
        with call_scope(TurnBudget.start(3000)) as scope:
            d = await router_chain({"us-east-1": a}, local, Settings()).acall({"text": "hello"})
    assert d.intents == ["faq"] and local.asked == 1
    bad, fallback = scope.meter.calls
    assert bad["outcome"] == "error:malformed" and bad["input_tokens"] == 100 and bad["usd"] > 0
    assert fallback["model"] == "local:router" and fallback["usd"] == 0


async def test_service_error_falls_back_without_retry_budget_wasted():
    a = client("us-east-1")
    with Stubber(a) as st:
        st.add_client_error("converse", service_error_code="ValidationException", service_message="bad input", http_status_code=400)
        with call_scope(TurnBudget.start(3000)) as scope:
            d = await router_chain({"us-east-1": a}, LocalStub(), Settings()).acall({"text": "hi"})
    assert d.intents == ["faq"]
    assert scope.meter.calls[0]["outcome"] == "error:invalid_request" and scope.meter.calls[0]["attempts"] == 1


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never answers (a real read timeout for botocore)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    conns, stop = [], threading.Event()

    def serve():
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    t.join()
    for c in conns:
        c.close()
    srv.close()


async def test_read_timeout_on_the_wire_falls_back(silent_server):
    slow = client("us-east-1", endpoint=silent_server, read_timeout=0.3)
    local = LocalStub()
    chain = router_chain({"us-east-1": slow}, local, Settings())
    chain.retries = 1
    with call_scope(TurnBudget.start(3000)) as scope:
        d = await chain.acall({"text": "hi"})
    assert d.intents == ["faq"] and local.asked == 1
    assert scope.meter.calls[0]["outcome"] == "error:read_timeout"


async def test_turn_deadline_cuts_a_slow_call(silent_server):
    slow = client("us-east-1", endpoint=silent_server, read_timeout=1.5)  # > the 600 ms budget
    chain = router_chain({"us-east-1": slow}, LocalStub(), Settings())
    budget = TurnBudget.start(600)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with call_scope(budget) as scope:
        await chain.acall({"text": "hi"})
    assert loop.time() - t0 < 1.0
    assert scope.meter.calls[0]["outcome"] == "error:timeout"


def test_malformed_tool_call_rejected_and_foreign_args_dropped():
    from langchain_core.tools import tool

    @tool
    def get_order(order_id: str) -> str:
        """Get one order."""
        return order_id

    msg = AIMessage(content="", tool_calls=[{"name": "get_order", "args": {"order_id": "MA-10001", "user_id": "u_other"},
                                             "id": "t1", "type": "tool_call"}])
    assert clean_tool_calls(msg, [get_order]).tool_calls[0]["args"] == {"order_id": "MA-10001"}
    with pytest.raises(MalformedOutput):
        clean_tool_calls(AIMessage(content="", tool_calls=[{"name": "drop_tables", "args": {}, "id": "t2", "type": "tool_call"}]), [get_order])
    with pytest.raises(MalformedOutput):
        clean_tool_calls(AIMessage(content="", tool_calls=[{"name": "get_order", "args": {}, "id": "t3", "type": "tool_call"}]), [get_order])


class _Local:
    """A minimal local profile for build_bedrock_models (roles are only reached on fallback)."""

    def __init__(self):
        from tools.backends.models.local_agents import local_agent_policies
        from tools.backends.models.local_critic import LocalCritic
        from tools.backends.models.local_writer import LocalTemplateWriter

        self.router, self.planner, self.writer = LocalStub(), None, LocalTemplateWriter()
        self.critic, self.agents, self.profile = LocalCritic(), local_agent_policies(), "local"


async def test_profile_writer_and_think_over_converse():
    a = client("us-east-1")
    settings = Settings(model_streaming=False, aws_fallback_region=None)
    models = build_bedrock_models(settings, fallback=_Local(), clients={"us-east-1": a})
    from langchain_core.tools import StructuredTool

    from core.ports import WriteTask
    from nodes.prompts import writer_messages
    from tools.search import SearchInput

    search = StructuredTool.from_function(lambda query, k=5: "", name="search_catalog", description="Search.", args_schema=SearchInput)
    with Stubber(a) as st:
        st.add_response("converse", text_reply("Berserk is in stock at ¥748.", 800, 12))
        st.add_response("converse", tool_use("search_catalog", {"query": "Berserk", "k": 5}, 300, 20))
        with call_scope(TurnBudget.start(5000)) as scope:
            msg = await models.writer.ainvoke(writer_messages(WriteTask(agent="search", intent="search", request="berserk?", locale="en")))
            think = await models.agents["search"].athink({"request": "Do you have Berserk?", "intent": "search"}, [search], None)
    assert msg.text == "Berserk is in stock at ¥748."
    assert think.tool_calls[0]["name"] == "search_catalog" and think.tool_calls[0]["args"]["query"] == "Berserk"
    writer_call, think_call = scope.meter.calls
    assert writer_call["model"] == SONNET and writer_call["usd"] == pytest.approx((800 * 3 + 12 * 15) / 1e6)
    assert think_call["model"] == HAIKU and think_call["output_tokens"] == 20


async def test_critic_malformed_falls_back_to_local_rules():
    a = client("us-east-1")
    models = build_bedrock_models(Settings(aws_fallback_region=None), fallback=_Local(), clients={"us-east-1": a})
    with Stubber(a) as st:
        st.add_response("converse", text_reply("Looks fine to me!"))  # no toolUse: not a Critique
        with call_scope(TurnBudget.start(3000)) as scope:
            c = await models.critic.acritique("It costs ¥999.", [{"kind": "search", "items": [{"price_jpy": 748}]}], "en")
    assert isinstance(c, Critique) and not c.ok and "¥999" in c.problems[0]
    assert [x["outcome"] for x in scope.meter.calls] == ["error:malformed", "ok"]


def test_missing_credentials_is_a_configuration_error(monkeypatch, tmp_path):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ConfigurationError, match="AWS_ACCESS_KEY_ID"):
        check_credentials(Settings())
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    check_credentials(Settings())


def test_cli_exits_2_without_credentials(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from cli.main import app
    from core.settings import get_settings

    env = {"MANGAASSIST_PROFILE": "bedrock", "MANGAASSIST_DATA_DIR": str(tmp_path), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
           "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true"}
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["chat", "--json", "hello"], env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert "AWS credentials" in result.output and "Traceback" not in result.output


def test_provider_model_names():
    assert is_provider_model("openai:gpt-4o-mini") and is_provider_model("ollama:llama3")
    assert not is_provider_model(HAIKU) and not is_provider_model("arn:aws:bedrock:us-east-1::foundation-model/x")


async def test_every_role_sends_the_recent_turns_and_the_focus_on_the_wire():
    """Router, planner, think and writer requests (the Converse parameters botocore builds) carry the thread's last
    messages and its dialogue state, bounded: 4 messages, 5 ids a list, no internal keys."""
    import json

    from langchain_core.tools import StructuredTool

    from core.ports import WriteTask
    from nodes.prompts import writer_messages
    from tools.search import SearchInput

    a = client("us-east-1")
    sent: list[dict] = []
    a.meta.events.register("before-parameter-build.bedrock-runtime.Converse", lambda params, **_: sent.append(params))
    models = build_bedrock_models(Settings(model_streaming=False, aws_fallback_region=None), fallback=_Local(),
                                  clients={"us-east-1": a})
    history = ["hi", "Hello!", "do you have Vagabond?", "Here is what I found: 1. Vagabond", "thanks"]
    focus = {"kind": "item", "item": {"mal_id": 656, "title": "Vagabond", "turn": 2, "source": "search"},
             "items": [656, 355, 1, 2, 3, 4, 5], "last_list": {"kind": "items", "turn": 2, "intent": "search"},
             "shown": list(range(30)), "last_intent": "search"}
    search = StructuredTool.from_function(lambda query, k=5: "", name="search_catalog", description="Search.",
                                          args_schema=SearchInput)
    with Stubber(a) as st:
        st.add_response("converse", tool_use("RouterDecision", {"intents": ["search"], "scores": {"search": 0.9}}))
        st.add_response("converse", tool_use("Plan", {"steps": [
            {"id": "s1", "agent": "search", "request": "who is the author of Vagabond?", "depends_on": []}]}))
        st.add_response("converse", tool_use("search_catalog", {"query": "Vagabond", "k": 1}))
        st.add_response("converse", text_reply("Vagabond is by Takehiko Inoue."))
        with call_scope(TurnBudget.start(10_000)):
            await models.router.aroute("who is the author?", history, focus)
            await models.planner.aplan("who is the author?", RouterDecision(intents=["search"], complex=True),
                                       history, focus)
            await models.agents["search"].athink({"request": "who is the author?", "intent": "search",
                                                  "history": history, "focus": focus}, [search], None)
            await models.writer.ainvoke(writer_messages(WriteTask(
                agent="search", intent="search", request="who is the author?", locale="en",
                history=history[-4:], focus={"item": focus["item"]})))
        st.assert_no_pending_responses()
    assert len(sent) == 4
    for params in sent:
        system = " ".join(s.get("text", "") for s in params["system"])
        payload = json.loads(params["messages"][0]["content"][0]["text"])
        assert '"focus" what it is about' in system
        assert payload["history"] == history[-4:], payload
        assert payload["focus"]["item"]["title"] == "Vagabond"
    for params in sent[:3]:  # router, planner, think: the bounded view of the state
        focus_sent = json.loads(params["messages"][0]["content"][0]["text"])["focus"]
        assert focus_sent["items"] == [656, 355, 1, 2, 3] and "shown" not in focus_sent
