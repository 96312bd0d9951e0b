"""The ``bedrock`` model profile: every role through ``langchain_aws.ChatBedrockConverse`` (or any LangChain chat
model named ``provider:model``), each behind a FallbackChain (model → smaller model → other region → local role).

Roles: router (RouterDecision), critic (Critique; quality gate and reflect), planner (Plan) use
``with_structured_output`` (Converse tool use, forced tool choice); the writer is a plain chat model whose
tokens stream (ConverseStream); the think role of each specialist is the agent model with
``bind_tools(tools)``. Clients are boto3 ``bedrock-runtime`` clients with botocore
``Config(read_timeout, connect_timeout, retries={"max_attempts": 1})``: retries and fallbacks are ours
(resilience.py), so botocore never hides a throttled call behind its own backoff.
"""

from __future__ import annotations

import asyncio
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AsyncIterator, Iterator, Mapping, Sequence

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.tools import BaseTool
from pydantic import ConfigDict, ValidationError

from core.deps import Models
from core.errors import ConfigurationError
from core.ports import Critique, Plan, RouterDecision
from core.settings import Settings
from core.usage import find_price
from tools.backends.models.prompts import (
    agent_messages,
    critic_messages,
    planner_messages,
    review_messages,
    router_messages,
)
from tools.backends.models.resilience import CircuitBreaker, FallbackChain, MalformedOutput, Tier

log = logging.getLogger(__name__)

NOSTREAM = {"tags": ["nostream"]}
"""Config of internal model calls: LangGraph's ``messages`` stream mode skips runs tagged 'nostream', so
only the writer's tokens reach clients."""


# ---- clients and chat models -------------------------------------------------------------------------

def is_provider_model(name: str) -> bool:
    """True for ``provider:model`` names (init_chat_model), False for Bedrock model ids/ARNs, whose part
    before the first ':' contains a '.' ("anthropic.claude-3-haiku-20240307-v1:0") or is 'arn'."""
    head, sep, _ = name.partition(":")
    return bool(sep) and "." not in head and head != "arn"


def check_credentials(settings: Settings) -> None:
    """Raise ConfigurationError naming what is missing when Bedrock cannot be called: no region, or no AWS
    credentials found by boto3's resolution chain (env vars, shared files/profile, SSO, container and
    instance roles). No network call is made for these checks."""
    import boto3
    from botocore.exceptions import BotoCoreError

    if not settings.aws_region:
        raise ConfigurationError("MANGAASSIST_PROFILE=bedrock needs a region: set MANGAASSIST_AWS_REGION (e.g. us-east-1)")
    try:
        creds = boto3.Session(region_name=settings.aws_region).get_credentials()
    except BotoCoreError as exc:  # e.g. a named profile that does not exist
        raise ConfigurationError(f"MANGAASSIST_PROFILE=bedrock: AWS credentials are unusable ({exc})") from exc
    if creds is None:
        raise ConfigurationError(
            "MANGAASSIST_PROFILE=bedrock needs AWS credentials, and none were found: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (plus AWS_SESSION_TOKEN for temporary keys), or AWS_PROFILE naming a profile in "
            "~/.aws/credentials, or run with an IAM role (see docs/bedrock.md for the permissions needed); "
            "or use MANGAASSIST_PROFILE=local")


def remote_models(settings: Settings) -> list[str]:
    """Every remote model id the profile may call: the five roles' models and, when a large role
    (planner, writer) uses another model, ``small_model`` (its fallback)."""
    roles = [settings.router_model, settings.critic_model, settings.planner_model, settings.writer_model,
             settings.agent_model]
    if any(m != settings.small_model for m in (settings.planner_model, settings.writer_model)):
        roles.append(settings.small_model)
    return list(dict.fromkeys(roles))


def check_prices(settings: Settings) -> None:
    """Raise ConfigurationError when a remote model has no price (``Settings.model_prices``, USD per 1M
    tokens) while a USD budget (turn, session or user-day; ``inf`` = none) is set: its calls would be billed
    as $0 and the budget would silently stop applying. No network call."""
    budgets = {"MANGAASSIST_USD_BUDGET_TURN": settings.usd_budget_turn,
               "MANGAASSIST_USD_BUDGET_SESSION": settings.usd_budget_session,
               "MANGAASSIST_USD_BUDGET_USER_DAY": settings.usd_budget_user_day}
    capped = [f"{k}={v:g}" for k, v in budgets.items() if math.isfinite(v)]
    unpriced = [m for m in remote_models(settings) if find_price(m, settings.model_prices) is None]
    if capped and unpriced:
        raise ConfigurationError(
            f"no price for model(s) {', '.join(unpriced)} while a USD budget is set ({', '.join(capped)}): their calls "
            "would count as $0. Set MANGAASSIST_MODEL_PRICES to a JSON map of model-id substring -> [input, output] "
            'USD per 1M tokens covering every configured model (it replaces the default map), e.g. '
            '\'{"haiku": [0.25, 1.25], "sonnet": [3, 15], "gpt-4o-mini": [0.15, 0.6]}\', '
            "or set the three MANGAASSIST_USD_BUDGET_* to inf (no USD caps). See docs/bedrock.md")


def uses_bedrock(settings: Settings) -> bool:
    """True when some role's model is a Bedrock id (not ``provider:model``)."""
    return not all(is_provider_model(m) for m in remote_models(settings))


def check_startup(settings: Settings) -> None:
    """The bedrock profile's start-up checks without building anything: prices (``check_prices``), then
    AWS credentials when a role uses Bedrock (``check_credentials``). Raises ConfigurationError."""
    check_prices(settings)
    if uses_bedrock(settings):
        check_credentials(settings)


def runtime_client(settings: Settings, region: str) -> Any:
    """A boto3 ``bedrock-runtime`` client for ``region`` with our timeouts and botocore retries off."""
    import boto3
    from botocore.config import Config

    cfg = Config(read_timeout=settings.model_timeout_s, connect_timeout=settings.model_connect_timeout_s,
                 retries={"max_attempts": 1, "mode": "standard"})
    return boto3.client("bedrock-runtime", region_name=region, config=cfg)


def chat_model(model: str, settings: Settings, region: str, client: Any = None, streaming: bool = True) -> BaseChatModel:
    """The chat model for ``model``: ``provider:model`` → ``init_chat_model`` (timeout ``model_timeout_s``,
    the client's own retries off: retries and fallbacks are ours); otherwise ChatBedrockConverse on
    ``client`` (built by ``runtime_client`` when None). Temperature 0 and ``model_max_tokens`` for both."""
    if is_provider_model(model):
        from langchain.chat_models import init_chat_model

        return init_chat_model(model, temperature=0, max_tokens=settings.model_max_tokens, timeout=settings.model_timeout_s,
                               max_retries=0)
    from langchain_aws import ChatBedrockConverse

    return ChatBedrockConverse(model=model, region_name=region, client=client or runtime_client(settings, region),
                               max_tokens=settings.model_max_tokens, temperature=0, disable_streaming=not streaming)


def model_key(model: str, expected: Mapping[str, float]) -> float:
    """Typical latency (ms) of ``model`` from ``Settings.model_expected_ms`` (longest key contained wins; 0 if none)."""
    m = model.lower()
    best = max((k for k in expected if k.lower() in m), key=len, default=None)
    return float(expected[best]) if best else 0.0


# ---- tier call adapters ---------------------------------------------------------------------------------

def structured_call(chat: BaseChatModel, schema: type, to_messages):
    """Tier call: ``to_messages(payload)`` → ``chat.with_structured_output(schema, include_raw=True)``;
    raises MalformedOutput (carrying the raw AIMessage for accounting) when the output does not parse."""
    runnable = chat.with_structured_output(schema, include_raw=True)

    async def call(payload: Any, timeout_s: float) -> tuple[Any, Any]:
        out = await runnable.ainvoke(to_messages(payload), config=NOSTREAM)
        raw, parsed, err = out.get("raw"), out.get("parsed"), out.get("parsing_error")
        if err is not None or parsed is None:
            raise MalformedOutput(f"{schema.__name__} not parsed: {err or 'no tool call'}", raw=raw)
        return parsed, raw

    return call


def local_call(fn):
    """Tier call around a local role coroutine ``fn(payload)`` (no usage)."""

    async def call(payload: Any, timeout_s: float) -> tuple[Any, Any]:
        return await fn(payload), None

    return call


# ---- roles ----------------------------------------------------------------------------------------------

class ChainRouter:
    """Router role over a FallbackChain of RouterDecision models (last tier: the local classifier).

    ``route_many`` (batch evaluation) uses the local classifier: evaluations run offline.
    """

    def __init__(self, chain: FallbackChain, local: Any):
        self.chain, self.local = chain, local
        self.expected_ms = chain.expected_ms()

    async def aroute(self, text: str, history: Sequence[str] = (), focus: Mapping[str, Any] | None = None
                     ) -> RouterDecision:
        """The RouterDecision of the first tier that answers."""
        return await self.chain.acall({"text": text, "history": list(history), "focus": dict(focus or {})})

    def route_many(self, texts: Sequence[str]) -> list[RouterDecision]:
        """RouterDecisions of the local classifier (batch evaluation runs offline)."""
        return self.local.route_many(texts)


class ChainCritic:
    """Critic role: ``acritique`` (quality gate) and ``areview_evidence`` (reflect) over fallback chains."""

    def __init__(self, gate: FallbackChain, review: FallbackChain):
        self.gate, self.review = gate, review
        self.expected_ms = gate.expected_ms()

    async def acritique(self, answer: str, evidence: list[dict], locale: str) -> Critique:
        """The Critique of ``answer`` against ``evidence``."""
        return await self.gate.acall({"answer": answer, "evidence": evidence, "locale": locale})

    async def areview_evidence(self, agent: str, intent: str, request: str, evidence: list[dict]) -> Critique:
        """Whether ``evidence`` answers the ``request`` of ``agent`` for ``intent``."""
        return await self.review.acall({"agent": agent, "intent": intent, "request": request, "evidence": evidence})


def validate_plan(plan: Plan) -> Plan:
    """``plan`` if its step ids are unique, every dependency names an earlier-defined step and it has no
    cycle; else MalformedOutput. Raises MalformedOutput for an empty plan."""
    ids = [s.id for s in plan.steps]
    if not ids or len(ids) != len(set(ids)):
        raise MalformedOutput(f"plan step ids empty or duplicated: {ids}")
    seen: set[str] = set()
    for s in plan.steps:
        missing = [d for d in s.depends_on if d not in seen]
        if missing:
            raise MalformedOutput(f"step {s.id} depends on unknown or later steps {missing}")
        seen.add(s.id)
    return plan


class ChainPlanner:
    """Planner role: a Plan (validated DAG) from the first tier that returns one; last tier: local rules."""

    def __init__(self, chain: FallbackChain):
        self.chain = chain
        self.expected_ms = chain.expected_ms()

    async def aplan(self, text: str, decision: RouterDecision, history: Sequence[str] = (),
                    focus: Mapping[str, Any] | None = None) -> Plan:
        """The Plan of ``text`` from the first tier that answers."""
        return await self.chain.acall({"text": text, "decision": decision, "history": list(history),
                                       "focus": dict(focus or {})})


def clean_tool_calls(msg: AIMessage, tools: Sequence[BaseTool], max_k: int | None = None) -> AIMessage:
    """``msg`` with each tool call checked against ``tools``: unknown tool names or arguments that fail the
    tool's input schema raise MalformedOutput; argument keys the schema does not declare (e.g. a
    ``user_id`` smuggled in by injected text) are dropped — identity only ever comes from the run's Context.
    A ``k`` argument is capped at ``max_k`` (the run's search_k, lowered by the ``fewer_items`` degrade)."""
    by_name = {t.name: t for t in tools}
    calls = []
    for call in msg.tool_calls:
        tool = by_name.get(call["name"])
        if tool is None:
            raise MalformedOutput(f"unknown tool {call['name']!r}", raw=msg)
        schema = tool.tool_call_schema
        fields = set(getattr(schema, "model_fields", {}) or {})
        args = {k: v for k, v in (call.get("args") or {}).items() if k in fields}
        if max_k is not None and isinstance(args.get("k"), int) and args["k"] > max_k:
            args["k"] = max_k
        try:
            if hasattr(schema, "model_validate"):
                schema.model_validate(args)
        except ValidationError as exc:
            raise MalformedOutput(f"bad arguments for {call['name']}: {exc.errors()[:2]}", raw=msg) from exc
        calls.append({**call, "args": args})
    return AIMessage(content=msg.content, tool_calls=calls, usage_metadata=msg.usage_metadata, id=msg.id)


class ToolCallingPolicy:
    """The think role of one specialist (AgentPolicy): the agent model with ``bind_tools(tools)``, falling back
    along its tiers; the last tier is the local rule policy. Tool calls are validated (clean_tool_calls)."""

    def __init__(self, agent: str, tiers: list[tuple[str, str, BaseChatModel | None, float, CircuitBreaker | None]],
                 local_policy: Any, settings: Settings):
        self.agent, self.tiers_spec, self.local_policy, self.settings = agent, tiers, local_policy, settings
        self.expected_ms = tiers[0][3] if tiers else 0.0

    def _chain(self, tools: Sequence[BaseTool], context: Any) -> FallbackChain:
        tiers = []
        for name, model, chat, expected, breaker in self.tiers_spec:
            bound = chat.bind_tools(list(tools))

            async def call(payload: Any, timeout_s: float, bound=bound) -> tuple[Any, Any]:
                msg = await bound.ainvoke(agent_messages(self.agent, payload), config=NOSTREAM)
                return clean_tool_calls(msg, tools, getattr(context, "search_k", None)), msg

            tiers.append(Tier(name, model, call, expected, breaker=breaker))

        async def local(payload: Any) -> AIMessage:
            return await self.local_policy.athink(payload, tools, context)

        tiers.append(Tier(f"local:think:{self.agent}", f"local:think:{self.agent}", local_call(local), local=True))
        return _chain(f"think:{self.agent}", tiers, self.settings)

    async def athink(self, state: dict, tools: Sequence[BaseTool], context: Any) -> AIMessage:
        """The next tool calls of the specialist, from the first tier that answers."""
        return await self._chain(tools, context).acall({**state, "search_k": getattr(context, "search_k", 5)})


class FallbackChatModel(BaseChatModel):
    """Writer role: a chat model that streams from the first tier of ``chain`` that starts answering.

    Input: the writer messages (tools/backends/models/prompts.writer_messages); output: the answer AIMessage whose
    ``usage_metadata`` is the answering tier's. Token callbacks come from this model only (inner models run
    tagged 'nostream'), so LangGraph's ``messages`` mode streams each token once.
    """

    chain: Any
    expected_ms: float = 0.0
    model_config = ConfigDict(arbitrary_types_allowed=True)

    @property
    def _llm_type(self) -> str:
        return "mangaassist-fallback-writer"

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        async for chunk in self.chain.astream(messages):
            text = chunk.text if isinstance(chunk, AIMessageChunk) else str(getattr(chunk, "content", chunk))
            out = ChatGenerationChunk(message=AIMessageChunk(content=text, usage_metadata=getattr(chunk, "usage_metadata", None)))
            if run_manager and text:
                await run_manager.on_llm_new_token(text, chunk=out)
            yield out

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        total: ChatGenerationChunk | None = None
        async for c in self._astream(messages, stop, run_manager, **kwargs):
            total = c if total is None else total + c
        msg = total.message if total else AIMessageChunk(content="")
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=msg.text, usage_metadata=msg.usage_metadata))])

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        """Sync entry point: runs ``_agenerate`` on a private event loop in a worker thread."""
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, self._agenerate(messages, stop)).result()

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        result = self._generate(messages, stop)
        yield ChatGenerationChunk(message=AIMessageChunk(content=result.generations[0].message.text))


def chat_stream(chat: BaseChatModel):
    """Tier stream function: the chat model's chunks for the writer messages, tagged 'nostream'."""

    def stream(messages: list[BaseMessage]) -> AsyncIterator[Any]:
        return chat.astream(messages, config=NOSTREAM)

    return stream


# ---- assembly ---------------------------------------------------------------------------------------------

def _chain(role: str, tiers: list[Tier], settings: Settings) -> FallbackChain:
    return FallbackChain(role, tiers, prices=settings.model_prices, max_tokens=settings.model_max_tokens,
                         retries=settings.model_retries, timeout_s=settings.model_timeout_s)


class _Factory:
    """Builds the remote tiers of each role with one chat model and one breaker per model@region."""

    def __init__(self, settings: Settings, clients: Mapping[str, Any] | None, chat_factory=None):
        self.settings = settings
        self.clients = dict(clients or {})
        self.chat_factory = chat_factory
        self.models: dict[tuple[str, str, bool], BaseChatModel] = {}
        self.breakers: dict[str, CircuitBreaker] = {}

    def regions(self) -> list[str]:
        s = self.settings
        return [s.aws_region] + ([s.aws_fallback_region] if s.aws_fallback_region and s.aws_fallback_region != s.aws_region else [])

    def chat(self, model: str, region: str, streaming: bool = False) -> BaseChatModel:
        key = (model, region if not is_provider_model(model) else "", streaming)
        if key not in self.models:
            if self.chat_factory is not None:
                self.models[key] = self.chat_factory(model, region, streaming)
            else:
                if not is_provider_model(model) and region not in self.clients:
                    self.clients[region] = runtime_client(self.settings, region)
                self.models[key] = chat_model(model, self.settings, region, self.clients.get(region), streaming)
        return self.models[key]

    def specs(self, model: str, large: bool) -> list[tuple[str, str, str]]:
        """(label, model, region) of a role's remote tiers: model@A [→ small@A when large] → model@B."""
        regions = self.regions()
        models = [model] + ([self.settings.small_model] if large and self.settings.small_model != model else [])
        out = [(m, regions[0]) for m in models]
        if not is_provider_model(model):
            out += [(model, r) for r in regions[1:]]
        return [(f"{m.split(':')[0] if not is_provider_model(m) else m}@{r}", m, r) for m, r in out]

    def breaker(self, label: str) -> CircuitBreaker:
        if label not in self.breakers:
            self.breakers[label] = CircuitBreaker(self.settings.breaker_failures, self.settings.breaker_open_s)
        return self.breakers[label]

    def structured(self, role: str, model: str, large: bool, schema: type, to_messages, local_fn,
                   post=None) -> FallbackChain:
        tiers = []
        for label, m, region in self.specs(model, large):
            call = structured_call(self.chat(m, region), schema, to_messages)
            if post is not None:
                call = _post(call, post)
            tiers.append(Tier(label, m, call, model_key(m, self.settings.model_expected_ms), breaker=self.breaker(label)))
        tiers.append(Tier(f"local:{role}", f"local:{role}", local_call(local_fn), local=True))
        return _chain(role, tiers, self.settings)


def _post(call, post):
    async def wrapped(payload: Any, timeout_s: float) -> tuple[Any, Any]:
        value, raw = await call(payload, timeout_s)
        try:
            return post(value), raw
        except MalformedOutput as exc:
            exc.raw = raw
            raise

    return wrapped


def _nonempty_intents(d: RouterDecision) -> RouterDecision:
    if not d.intents:
        raise MalformedOutput("router returned no intent")
    return d


def build_bedrock_models(settings: Settings, fallback: Models, *, clients: Mapping[str, Any] | None = None,
                         chat_factory=None) -> Models:
    """The bedrock profile's Models, each role falling back to ``fallback`` (the local profile) last.

    ``clients`` maps region → bedrock-runtime client (tests pass Stubber-wrapped clients); ``chat_factory``
    ``(model, region, streaming) → BaseChatModel`` replaces model construction entirely (scripted models in
    tests and benchmarks). Prices are checked first (``check_prices``), then, without either, AWS credentials
    when a role uses Bedrock: ConfigurationError names what is missing (the CLI exits with code 2).
    """
    check_prices(settings)
    if clients is None and chat_factory is None and uses_bedrock(settings):
        check_credentials(settings)
    f = _Factory(settings, clients, chat_factory)
    local = fallback

    router = ChainRouter(f.structured(
        "router", settings.router_model, False, RouterDecision,
        lambda p: router_messages(p["text"], p["history"], p.get("focus")),
        lambda p: local.router.aroute(p["text"], p["history"]), post=_nonempty_intents), local.router)
    critic = ChainCritic(
        f.structured("critic", settings.critic_model, False, Critique,
                     lambda p: critic_messages(p["answer"], p["evidence"], p["locale"]),
                     lambda p: local.critic.acritique(p["answer"], p["evidence"], p["locale"])),
        f.structured("reflect", settings.critic_model, False, Critique,
                     lambda p: review_messages(p["agent"], p["intent"], p["request"], p["evidence"]),
                     lambda p: local.critic.areview_evidence(p["agent"], p["intent"], p["request"], p["evidence"])))
    planner = ChainPlanner(f.structured(
        "planner", settings.planner_model, True, Plan,
        lambda p: planner_messages(p["text"], list(p["decision"].intents), p.get("history", ()), p.get("focus")),
        lambda p: local.planner.aplan(p["text"], p["decision"]), post=validate_plan))

    writer_tiers = [Tier(label, m, None, model_key(m, settings.model_expected_ms), breaker=f.breaker(label),  # type: ignore[arg-type]
                         stream=chat_stream(f.chat(m, region, streaming=settings.model_streaming)))
                    for label, m, region in f.specs(settings.writer_model, True)]
    writer_tiers.append(Tier("local:writer", "local:writer", None, local=True,  # type: ignore[arg-type]
                             stream=chat_stream(local.writer)))
    writer = FallbackChatModel(chain=_chain("writer", writer_tiers, settings),
                               expected_ms=writer_tiers[0].expected_ms)

    agents = {}
    for name, policy in local.agents.items():
        specs = [(label, m, f.chat(m, region), model_key(m, settings.model_expected_ms), f.breaker(label))
                 for label, m, region in f.specs(settings.agent_model, False)]
        agents[name] = ToolCallingPolicy(name, specs, policy, settings)
    return Models(profile="bedrock", router=router, planner=planner, writer=writer, critic=critic, agents=agents)
