"""Non-Bedrock providers (``provider:model``, init_chat_model): their throttling, 5xx, timeouts and connection errors
are classified and fall back like Bedrock's, and a model without a price cannot run under a USD budget.

Tested at the HTTP boundary of OpenAI's official client: a real ``langchain_openai.ChatOpenAI`` whose httpx
clients use an ``httpx.MockTransport`` answering like the OpenAI API (429 / 5xx / timeouts / completions)."""

from __future__ import annotations

import json
import math

import httpx
import pytest
from langchain_openai import ChatOpenAI

from core.budget import TurnBudget, call_scope
from core.errors import ConfigurationError
from core.ports import WriteTask
from core.settings import Settings
from nodes.prompts import writer_messages
from tests.unit.test_bedrock_wire import _Local
from tools.backends.models.bedrock import build_bedrock_models, chat_model, check_prices
from tools.backends.models.resilience import error_kind

MINI = "openai:gpt-4o-mini"
PRICES = {"gpt-4o-mini": (0.15, 0.60), "haiku": (0.25, 1.25), "sonnet": (3.0, 15.0)}


def openai_settings(**kw) -> Settings:
    """Every role on gpt-4o-mini through init_chat_model's provider:model form, priced."""
    base = dict(router_model=MINI, critic_model=MINI, planner_model=MINI, writer_model=MINI, agent_model=MINI,
                small_model=MINI, model_prices=PRICES, aws_fallback_region=None, model_streaming=False)
    return Settings(**{**base, **kw})


class OpenAIWire:
    """What the OpenAI API answers: ``responses`` is a list of httpx.Response | Exception, used in order (the
    last one repeats). Records every request."""

    def __init__(self, *responses):
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        r = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        if isinstance(r, Exception):
            raise r
        return r

    def factory(self, model: str, region: str, streaming: bool) -> ChatOpenAI:
        """chat_factory for build_bedrock_models: the official client on this transport, no client retries."""
        assert model.startswith("openai:")
        return ChatOpenAI(model=model.split(":", 1)[1], api_key="sk-test", max_retries=0, timeout=5,
                          disable_streaming=not streaming,
                          http_async_client=httpx.AsyncClient(transport=httpx.MockTransport(self)),
                          http_client=httpx.Client(transport=httpx.MockTransport(self)))


def api_error(status: int, message: str = "error", kind: str = "server_error") -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": message, "type": kind, "code": None}})


def completion(text: str, tin: int = 800, tout: int = 12) -> httpx.Response:
    return httpx.Response(200, json={
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": tin, "completion_tokens": tout, "total_tokens": tin + tout}})


def write_task() -> list:
    return writer_messages(WriteTask(agent="search", intent="search", request="Do you have Berserk?", locale="en"))


# ---- errors of the provider, on the wire --------------------------------------------------------------


async def test_openai_throttling_falls_back_to_the_local_writer():
    wire = OpenAIWire(api_error(429, "Rate limit reached for gpt-4o-mini", "requests"))
    models = build_bedrock_models(openai_settings(), fallback=_Local(), chat_factory=wire.factory)
    with call_scope(TurnBudget.start(5000)) as scope:
        msg = await models.writer.ainvoke(write_task())
    assert msg.text  # the local template writer answered
    assert [(c["model"], c["outcome"], c["attempts"]) for c in scope.meter.calls] == [
        (MINI, "error:throttled", 2), ("local:writer", "ok", 1)]
    assert len(wire.requests) == 2 and wire.requests[0].url.path == "/v1/chat/completions"


@pytest.mark.parametrize(("answer", "kind"), [
    (api_error(429, "Rate limit", "requests"), "throttled"),
    (api_error(503, "The engine is currently overloaded"), "service"),
    (api_error(500, "internal"), "service"),
    (api_error(502, "bad gateway"), "service"),
    (api_error(401, "Incorrect API key", "invalid_request_error"), "auth"),
    (api_error(400, "maximum context length", "invalid_request_error"), "invalid_request"),
    (httpx.ReadTimeout("timed out"), "read_timeout"),
    (httpx.ConnectError("connection refused"), "connection"),
])
async def test_openai_errors_are_classified_and_the_router_falls_back(answer, kind):
    wire = OpenAIWire(answer)
    models = build_bedrock_models(openai_settings(), fallback=_Local(), chat_factory=wire.factory)
    with call_scope(TurnBudget.start(5000)) as scope:
        decision = await models.router.aroute("Do you have Berserk?")
    assert decision.intents == ["faq"]  # LocalStub: the local router answered
    assert [c["outcome"] for c in scope.meter.calls] == [f"error:{kind}", "ok"]
    assert scope.meter.calls[0]["model"] == MINI


async def test_openai_5xx_on_the_think_role_falls_back_to_the_local_policy():
    from langchain_core.tools import StructuredTool

    from tools.search import SearchInput

    search = StructuredTool.from_function(lambda query, k=5: "", name="search_catalog", description="Search.",
                                          args_schema=SearchInput)
    wire = OpenAIWire(api_error(503, "overloaded"))
    models = build_bedrock_models(openai_settings(), fallback=_Local(), chat_factory=wire.factory)
    with call_scope(TurnBudget.start(5000)) as scope:
        msg = await models.agents["search"].athink({"request": "Do you have Berserk?", "intent": "search",
                                                    "messages": []}, [search], None)
    assert msg.tool_calls and msg.tool_calls[0]["name"] == "search_catalog"
    assert [c["outcome"] for c in scope.meter.calls] == ["error:service", "ok"]


async def test_a_priced_provider_model_is_billed_from_its_usage():
    wire = OpenAIWire(completion("Berserk is in stock at ¥748.", 800, 12))
    models = build_bedrock_models(openai_settings(), fallback=_Local(), chat_factory=wire.factory)
    with call_scope(TurnBudget.start(5000)) as scope:
        msg = await models.writer.ainvoke(write_task())
    assert msg.text == "Berserk is in stock at ¥748."
    [call] = scope.meter.calls
    assert call["outcome"] == "ok" and (call["input_tokens"], call["output_tokens"]) == (800, 12)
    assert call["usd"] == pytest.approx((800 * 0.15 + 12 * 0.60) / 1e6)
    assert json.loads(wire.requests[0].content)["model"] == "gpt-4o-mini"


def test_error_kind_duck_types_any_provider():
    """No provider package needed: HTTP status on the exception or its response, or the exception's type name."""
    def exc(name: str, **attrs) -> Exception:
        return type(name, (Exception,), attrs)("x")

    class Resp:
        def __init__(self, status_code: int):
            self.status_code = status_code

    assert error_kind(exc("APIStatusError", status_code=429)) == "throttled"
    assert error_kind(exc("HTTPStatusError", response=Resp(503))) == "service"
    assert error_kind(exc("ServerError", code=529)) == "service"  # e.g. google-genai APIError.code
    assert error_kind(exc("ApiError", status_code=403)) == "auth"
    assert error_kind(exc("ApiError", status_code=422)) == "invalid_request"
    assert error_kind(exc("ApiError", status_code=408)) == "read_timeout"
    assert error_kind(exc("RateLimitError")) == "throttled"
    assert error_kind(exc("OverloadedError")) == "service"
    assert error_kind(exc("APITimeoutError")) == "read_timeout"
    assert error_kind(exc("APIConnectionError")) == "connection"
    assert error_kind(httpx.ConnectTimeout("slow connect")) == "connection"
    assert error_kind(httpx.PoolTimeout("pool")) == "read_timeout"
    assert error_kind(ConnectionResetError()) == "connection"
    assert error_kind(TimeoutError()) == "read_timeout"  # a client's own timeout; our deadline is DeadlineExceeded
    # bugs still propagate
    assert error_kind(KeyError("k")) is None and error_kind(ValueError("v")) is None
    assert error_kind(exc("Weird", code=2)) is None


# ---- prices -----------------------------------------------------------------------------------------


def test_an_unpriced_model_under_a_usd_budget_is_a_configuration_error():
    s = openai_settings(model_prices={"haiku": (0.25, 1.25), "sonnet": (3.0, 15.0)})
    with pytest.raises(ConfigurationError, match="MANGAASSIST_MODEL_PRICES") as err:
        check_prices(s)
    assert MINI in str(err.value) and "MANGAASSIST_USD_BUDGET_TURN" in str(err.value)
    with pytest.raises(ConfigurationError, match="gpt-4o-mini"):
        build_bedrock_models(s, fallback=_Local(), chat_factory=OpenAIWire(completion("x")).factory)


def test_an_unpriced_bedrock_model_is_refused_too():
    s = Settings(writer_model="meta.llama3-70b-instruct-v1:0")
    with pytest.raises(ConfigurationError, match="meta.llama3-70b-instruct-v1:0"):
        check_prices(s)
    check_prices(Settings())  # the defaults are priced


def test_a_configured_price_or_no_usd_budget_lets_it_start():
    check_prices(openai_settings())
    check_prices(openai_settings(model_prices={}, usd_budget_turn=math.inf, usd_budget_session=math.inf,
                                 usd_budget_user_day=math.inf))
    with pytest.raises(ConfigurationError):  # one finite cap is enough to need prices
        check_prices(openai_settings(model_prices={}, usd_budget_turn=math.inf, usd_budget_session=math.inf))


def test_price_setting_from_the_environment(monkeypatch):
    monkeypatch.setenv("MANGAASSIST_MODEL_PRICES", json.dumps({"gpt-4o-mini": [0.15, 0.6], "haiku": [0.25, 1.25],
                                                              "sonnet": [3, 15]}))
    monkeypatch.setenv("MANGAASSIST_WRITER_MODEL", MINI)
    s = Settings()
    assert s.model_prices["gpt-4o-mini"] == (0.15, 0.6)
    check_prices(s)


def test_provider_models_are_built_without_client_retries(monkeypatch):
    """Retries and fallbacks are ours: the provider client must not hide a 429 behind its own backoff."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    m = chat_model(MINI, Settings(model_timeout_s=7.0), "us-east-1")
    assert isinstance(m, ChatOpenAI) and m.max_retries == 0 and m.request_timeout == 7.0
    assert m.root_async_client.max_retries == 0


def test_cli_exits_2_for_an_unpriced_model(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from cli.main import app
    from core.settings import get_settings

    env = {"MANGAASSIST_PROFILE": "bedrock", "MANGAASSIST_WRITER_MODEL": MINI, "MANGAASSIST_DATA_DIR": str(tmp_path),
           "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "OPENAI_API_KEY": "sk-test"}
    for var in ("MANGAASSIST_MODEL_PRICES", "DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["chat", "--json", "hello"], env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert "no price for model(s) openai:gpt-4o-mini" in result.output and "MANGAASSIST_MODEL_PRICES" in result.output
    assert "Traceback" not in result.output


def test_serve_exits_2_for_an_unpriced_model_before_starting_the_server(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from cli.main import app
    from core.settings import get_settings

    env = {"MANGAASSIST_PROFILE": "bedrock", "MANGAASSIST_WRITER_MODEL": MINI, "MANGAASSIST_DATA_DIR": str(tmp_path),
           "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}
    monkeypatch.delenv("MANGAASSIST_MODEL_PRICES", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["serve", "--port", "1"], env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert "no price for model(s) openai:gpt-4o-mini" in result.output
