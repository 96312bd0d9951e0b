"""Fallback chains for model roles: per-model circuit breakers, retries on transient errors only, budget-aware
timeouts and tier skipping, and a CallRecord per tier so every fallback shows in the turn's usage.

A role (router, critic, planner, writer, think) is a ``FallbackChain`` of ``Tier``s, e.g. Sonnet@us-east-1 →
Haiku@us-east-1 → Sonnet@us-west-2 → the local profile's role. A tier is tried unless its breaker is open,
its typical latency exceeds the time left (``smaller_model`` degrade) or its estimated cost exceeds the
USD left. Errors that send the role to the next tier: timeouts (botocore read/connect, the model call's
own timeout, or the turn's deadline), throttling, 5xx service errors, connection errors, malformed
structured/tool output, access errors. Transient ones (throttling, 5xx, read timeouts, connection) are
first retried on the same tier with exponential backoff + jitter (tenacity), while the budget allows.
Anything else (a bug) propagates.

Only model faults (``BREAKER_FAULTS``: the transient kinds) count against a model's circuit breaker. A
timeout caused by the turn's own deadline says nothing about the model (a budget-starved turn must not
open a healthy model's breaker for every user), and an unusable answer (malformed output, a 400 for our
request) proves the model is up: it counts as a success.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, Sequence

from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from langchain_core import exceptions as lc_exceptions
from langchain_core.exceptions import OutputParserException
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, stop_before_delay, wait_exponential_jitter

from core.budget import RESERVE_MS, current_scope
from core.errors import BudgetExceeded
from core.usage import CallRecord, cost_usd, tokens_of

log = logging.getLogger(__name__)

THROTTLING_CODES = frozenset({"ThrottlingException", "TooManyRequestsException", "ServiceQuotaExceededException"})
SERVICE_CODES = frozenset({"ServiceUnavailableException", "InternalServerException", "ModelNotReadyException",
                           "ModelTimeoutException", "ModelErrorException", "ModelStreamErrorException"})
TRANSIENT_KINDS = frozenset({"throttled", "service", "read_timeout", "connection"})
BREAKER_FAULTS = TRANSIENT_KINDS
"""Error kinds that are faults of the model (count as circuit-breaker failures)."""
ANSWERED_KINDS = frozenset({"malformed", "invalid_request"})
"""Error kinds where the model answered (a breaker success: the model is up)."""


class MalformedOutput(Exception):
    """A model answered, but not with the structured output / tool calls asked for. ``raw`` is the AIMessage
    (its tokens are still billed and recorded)."""

    def __init__(self, message: str, raw: Any = None):
        super().__init__(message)
        self.raw = raw


class DeadlineExceeded(Exception):
    """The turn's deadline passed while waiting on a model (the tier is abandoned). Kind ``timeout``; not a
    fault of the model (the breaker does not count it)."""


class ModelTimeout(Exception):
    """A model call outlived its own timeout (``FallbackChain.timeout_s``) while the turn still had time: a
    fault of the model, kind ``read_timeout`` (retried, counted by the breaker)."""


LC_MODEL_ERRORS: tuple[tuple[type, str], ...] = tuple(
    (cls, kind) for name, kind in (
        ("ModelRateLimitError", "throttled"), ("ModelAPIError", "service"), ("ModelTimeoutError", "read_timeout"),
        ("ModelConnectionError", "connection"), ("ModelAuthenticationError", "auth"),
        ("ModelPermissionDeniedError", "auth"), ("ContextOverflowError", "invalid_request"),
        ("ModelInvalidRequestError", "invalid_request"), ("ModelNotFoundError", "invalid_request"),
        ("ModelRefusalError", "malformed"))
    if isinstance(cls := getattr(lc_exceptions, name, None), type))
"""LangChain's provider-independent model errors (langchain-core >= 1.8; integrations raise subclasses that
also inherit the provider SDK's exception), most specific first."""

ERROR_TYPE_NAMES: Mapping[str, str] = {
    # openai / anthropic / groq / mistral / fireworks SDKs (Stainless clients) and their LangChain wrappers
    "RateLimitError": "throttled", "OverloadedError": "service", "InternalServerError": "service",
    "ServiceUnavailableError": "service", "APITimeoutError": "read_timeout", "APIConnectionError": "connection",
    "AuthenticationError": "auth", "PermissionDeniedError": "auth",
    # httpx (most providers' HTTP layer): a connect timeout never reached the model
    "ConnectTimeout": "connection", "ReadTimeout": "read_timeout", "WriteTimeout": "read_timeout",
    "PoolTimeout": "read_timeout", "TimeoutException": "read_timeout", "ConnectError": "connection",
    "RemoteProtocolError": "connection", "NetworkError": "connection", "TransportError": "connection",
    # aiohttp / requests
    "ServerTimeoutError": "read_timeout", "ClientConnectionError": "connection", "ServerDisconnectedError": "connection",
    "Timeout": "read_timeout",
}
"""Exception class names → kind, matched along the exception's MRO (most specific class first), so providers
are classified without importing their packages."""


def http_status(exc: BaseException) -> int | None:
    """The HTTP status an exception carries, duck-typed: ``exc.status_code`` (openai, anthropic, cohere,
    mistral, ollama), ``exc.response.status_code`` (httpx.HTTPStatusError, requests), ``exc.http_status`` or
    an integer ``exc.code`` (google-genai, urllib); only values 100–599 count. None when there is none."""
    for value in (getattr(exc, "status_code", None), getattr(getattr(exc, "response", None), "status_code", None),
                  getattr(exc, "http_status", None), getattr(exc, "code", None)):
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
            return value
    return None


def status_kind(status: int) -> str | None:
    """Error kind of an HTTP status: 429 throttled, 408 read_timeout, 401/403 auth, other 4xx
    invalid_request, 5xx (529 = overloaded included) service; None below 400."""
    if status == 429:
        return "throttled"
    if status == 408:
        return "read_timeout"
    if status in (401, 403):
        return "auth"
    if status >= 500:
        return "service"
    if status >= 400:
        return "invalid_request"
    return None


def error_kind(exc: BaseException) -> str | None:
    """Fallback-worthy error kind of ``exc``: throttled, service, read_timeout, timeout, connection,
    malformed, auth, invalid_request; None for anything else (propagates).

    ``timeout`` is only the turn's own deadline (DeadlineExceeded). Bedrock errors are read from botocore;
    any other LangChain provider by LangChain's model-error types, the HTTP status the exception carries
    (``http_status``), then its class names (``ERROR_TYPE_NAMES``: openai/anthropic SDKs, httpx, aiohttp,
    requests), then the built-in ConnectionError / TimeoutError (the client's own timeout)."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in THROTTLING_CODES:
            return "throttled"
        if code in SERVICE_CODES or int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0) >= 500:
            return "service"
        if code in ("AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException"):
            return "auth"
        return "invalid_request"
    if isinstance(exc, (ReadTimeoutError, ModelTimeout)):
        return "read_timeout"
    if isinstance(exc, (ConnectTimeoutError, BotoConnectionError)):
        return "connection"
    if isinstance(exc, DeadlineExceeded):
        return "timeout"
    if isinstance(exc, (MalformedOutput, OutputParserException, ValidationError, json.JSONDecodeError)):
        return "malformed"
    if isinstance(exc, NoCredentialsError):
        return "auth"
    for cls, kind in LC_MODEL_ERRORS:
        if isinstance(exc, cls):
            return kind
    status = http_status(exc)
    if status is not None and (kind := status_kind(status)) is not None:
        return kind
    for cls in type(exc).__mro__:
        if cls.__name__ in ERROR_TYPE_NAMES:
            return ERROR_TYPE_NAMES[cls.__name__]
    if isinstance(exc, ConnectionError):
        return "connection"
    if isinstance(exc, TimeoutError):  # a client's own timeout: the turn's deadline is DeadlineExceeded
        return "read_timeout"
    return None


class CircuitBreaker:
    """Consecutive-failure breaker for one model: opens after ``failures`` model faults in a row and rejects
    calls for ``open_s`` seconds (``clock``: monotonic seconds), then lets one trial call through
    (half-open); a success closes it, a failure re-opens it for ``open_s``, and a trial that ended without
    a verdict (``release``: the turn's deadline, an access error) lets the next caller try."""

    def __init__(self, failures: int = 3, open_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.failures, self.open_s, self.clock = failures, open_s, clock
        self.consecutive = 0
        self.open_until = 0.0
        self._trial = False

    @property
    def state(self) -> str:
        """'closed', 'open' or 'half_open'."""
        if self.consecutive < self.failures:
            return "closed"
        return "open" if self.clock() < self.open_until else "half_open"

    def allow(self) -> bool:
        """True unless open. A half-open breaker admits a trial and re-arms, so concurrent calls wait again."""
        st = self.state
        if st == "half_open":
            self.open_until = self.clock() + self.open_s
            self._trial = True
            return True
        return st == "closed"

    def success(self) -> None:
        """The model answered: close."""
        self.consecutive = 0
        self.open_until = 0.0
        self._trial = False

    def failure(self) -> None:
        """A model fault (throttling, 5xx, connection, the model's own timeout)."""
        self._trial = False
        self.consecutive += 1
        if self.consecutive >= self.failures:
            self.open_until = self.clock() + self.open_s

    def release(self) -> None:
        """A call ended without telling whether the model is healthy: no count; a half-open trial taken by
        that call is given back (the breaker is half-open again)."""
        if self._trial:
            self._trial = False
            self.open_until = min(self.open_until, self.clock())

    def record(self, kind: str | None) -> None:
        """Count the outcome of one tier call: ``kind`` None = ok, else an ``error_kind`` (faults in
        ``BREAKER_FAULTS`` are failures, ``ANSWERED_KINDS`` successes, anything else releases)."""
        if kind is None or kind in ANSWERED_KINDS:
            self.success()
        elif kind in BREAKER_FAULTS:
            self.failure()
        else:
            self.release()


@dataclass
class Tier:
    """One model of a role's chain.

    name: label (e.g. 'sonnet@us-east-1'); model: model id for pricing; call: async (input, timeout_s) →
    (value, raw AIMessage or None); expected_ms: typical latency used for skipping; local: the offline last
    resort (never skipped, never billed); breaker: shared per model+region.
    """

    name: str
    model: str
    call: Callable[[Any, float], Awaitable[tuple[Any, Any]]]
    expected_ms: float = 0.0
    local: bool = False
    breaker: CircuitBreaker | None = None
    stream: Callable[[Any], AsyncIterator[Any]] | None = None


def estimate_input_tokens(payload: Any) -> int:
    """Conservative input-token estimate for the pre-call USD check: characters / 3 of the messages."""
    try:
        text = "".join(str(getattr(m, "content", m)) for m in payload) if isinstance(payload, (list, tuple)) else str(payload)
    except TypeError:
        text = str(payload)
    return max(1, len(text) // 3)


@dataclass
class FallbackChain:
    """A role's ordered tiers. ``acall(payload)`` returns the first tier's value that succeeds.

    Raises BudgetExceeded when no tier may run (all remote tiers unaffordable and no local tier), or the
    last error when every tier failed.
    """

    role: str
    tiers: Sequence[Tier]
    prices: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    max_tokens: int = 1024
    retries: int = 2
    timeout_s: float = 10.0
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 0.8

    def expected_ms(self) -> float:
        """Typical latency of the first tier (what a step should plan for)."""
        return self.tiers[0].expected_ms if self.tiers else 0.0

    async def acall(self, payload: Any) -> Any:
        """Call the tiers in order until one succeeds, within the turn's budget."""
        scope = current_scope()
        last_exc: BaseException | None = None
        n_remote_left = sum(1 for t in self.tiers if not t.local)
        for i, tier in enumerate(self.tiers):
            has_next = i < len(self.tiers) - 1
            if not tier.local:
                n_remote_left -= 1
                skip = self._skip_reason(tier, scope, payload, has_next)
                if skip:
                    self._record(scope, tier, i, f"skipped:{skip}")
                    continue
            t0 = time.perf_counter()
            attempts = 0
            try:
                async for attempt in self._retrying(tier, scope):
                    with attempt:
                        attempts += 1
                        value, raw = await self._attempt(tier, payload, scope)
            except BaseException as exc:  # noqa: BLE001 - classified below, unknown errors re-raised
                kind = error_kind(exc)
                if kind is None or tier.local:
                    raise
                raw = getattr(exc, "raw", None)
                if tier.breaker:
                    tier.breaker.record(kind)
                self._record(scope, tier, i, f"error:{kind}", raw, (time.perf_counter() - t0) * 1000, attempts)
                log.warning("%s: %s failed (%s: %s); falling back", self.role, tier.name, kind, exc)
                last_exc = exc
                continue
            if tier.breaker:
                tier.breaker.success()
            self._record(scope, tier, i, "ok", raw, (time.perf_counter() - t0) * 1000, attempts)
            if i > 0 and scope is not None and any(not t.local for t in self.tiers[:i]) and tier.local:
                scope.budget.degrade("smaller_model")
            return value
        if last_exc is not None:
            raise last_exc
        raise BudgetExceeded(f"{self.role}: no model fits the remaining budget")

    async def astream(self, payload: Any) -> AsyncIterator[Any]:
        """Stream the chunks (AIMessageChunk) of the first tier that starts streaming.

        A tier that fails before its first chunk falls back like ``acall`` (transient errors are retried
        first); once chunks flowed, a failure or the deadline ends the stream there and records the
        ``partial_answer`` degrade step (the text already shown is kept, never repeated). Usage is summed
        over the chunks' ``usage_metadata``.
        """
        scope = current_scope()
        last_exc: BaseException | None = None
        for i, tier in enumerate(self.tiers):
            has_next = i < len(self.tiers) - 1
            if not tier.local:
                skip = self._skip_reason(tier, scope, payload, has_next)
                if skip:
                    self._record(scope, tier, i, f"skipped:{skip}")
                    continue
            t0 = time.perf_counter()
            attempts, started, usage = 0, False, None
            while True:
                attempts += 1
                try:
                    it = tier.stream(payload).__aiter__()  # type: ignore[misc]
                    while True:
                        timeout = None
                        if scope is not None and not tier.local:
                            timeout = (scope.budget.remaining_ms() - RESERVE_MS) / 1000
                            if timeout <= 0:
                                raise DeadlineExceeded(f"{tier.name}: no time left")
                        try:
                            chunk = await asyncio.wait_for(it.__anext__(), timeout)
                        except StopAsyncIteration:
                            break
                        except TimeoutError as exc:
                            raise DeadlineExceeded(f"{tier.name}: deadline while streaming") from exc
                        usage = chunk if usage is None else usage + chunk
                        if getattr(chunk, "content", None):
                            started = True
                        yield chunk
                except BaseException as exc:  # noqa: BLE001 - classified below
                    kind = error_kind(exc)
                    if kind is None or tier.local:
                        raise
                    if not started and kind in TRANSIENT_KINDS and attempts < self.retries and (
                            scope is None or scope.budget.remaining_ms() - RESERVE_MS > tier.expected_ms):
                        await asyncio.sleep(min(self.backoff_max_s, self.backoff_initial_s * 2 ** (attempts - 1)))
                        continue
                    if tier.breaker:
                        tier.breaker.record(kind)
                    self._record(scope, tier, i, f"error:{kind}", usage, (time.perf_counter() - t0) * 1000, attempts)
                    if started:
                        if scope is not None:
                            scope.budget.degrade("partial_answer")
                        return
                    last_exc = exc
                    break
                else:
                    if tier.breaker:
                        tier.breaker.success()
                    self._record(scope, tier, i, "ok", usage, (time.perf_counter() - t0) * 1000, attempts)
                    if tier.local and i > 0 and scope is not None:
                        scope.budget.degrade("smaller_model")
                    return
        if last_exc is not None:
            raise last_exc
        raise BudgetExceeded(f"{self.role}: no model fits the remaining budget")

    # ---- helpers ----------------------------------------------------------------------------

    def _skip_reason(self, tier: Tier, scope: Any, payload: Any, has_next: bool) -> str | None:
        if tier.breaker is not None and not tier.breaker.allow():
            return "circuit_open"
        if scope is None:
            return None
        budget = scope.budget
        remaining = budget.remaining_ms() - RESERVE_MS
        if remaining <= 0 or (has_next and tier.expected_ms > remaining):
            budget.degrade("smaller_model")
            return "latency"
        est = cost_usd(tier.model, estimate_input_tokens(payload), self.max_tokens, self.prices)
        if est > budget.usd_left(scope.meter.usd):
            budget.degrade("usd_budget")
            return "usd"
        return None

    def _retrying(self, tier: Tier, scope: Any) -> AsyncRetrying:
        stop = stop_after_attempt(1 if tier.local else max(1, self.retries))
        if scope is not None:
            stop = stop | stop_before_delay(max(0.0, (scope.budget.remaining_ms() - RESERVE_MS) / 1000))
        return AsyncRetrying(stop=stop, reraise=True,
                             retry=retry_if_exception(lambda e: error_kind(e) in TRANSIENT_KINDS),
                             wait=wait_exponential_jitter(multiplier=self.backoff_initial_s, max=self.backoff_max_s))

    async def _attempt(self, tier: Tier, payload: Any, scope: Any) -> tuple[Any, Any]:
        """One call of ``tier`` within min(model timeout, time left). Raises DeadlineExceeded when the
        turn's deadline cut it (or left no time), ModelTimeout when the model's own timeout did."""
        timeout, by_deadline = self.timeout_s, False
        if scope is not None and not tier.local:
            left = (scope.budget.remaining_ms() - RESERVE_MS) / 1000
            if left <= 0:
                raise DeadlineExceeded(f"{tier.name}: no time left")
            if left < timeout:
                timeout, by_deadline = left, True
        if tier.local:
            return await tier.call(payload, timeout)
        try:
            return await asyncio.wait_for(tier.call(payload, timeout), timeout)
        except TimeoutError as exc:
            if by_deadline:
                raise DeadlineExceeded(f"{tier.name}: the turn's deadline cut it after {timeout * 1000:.0f} ms") from exc
            raise ModelTimeout(f"{tier.name}: no answer within the model timeout ({timeout * 1000:.0f} ms)") from exc

    def _record(self, scope: Any, tier: Tier, i: int, outcome: str, raw: Any = None, ms: float = 0.0,
                attempts: int = 0) -> None:
        if scope is None:
            return
        tin, tout = tokens_of(raw) if raw is not None else (0, 0)
        scope.meter.record(CallRecord(role=self.role, model=tier.model, tier=i, outcome=outcome,
                                      input_tokens=tin, output_tokens=tout,
                                      usd=0.0 if tier.local else cost_usd(tier.model, tin, tout, self.prices),
                                      ms=ms, attempts=attempts))


def finite(x: float) -> float:
    """``x`` or a large float for infinity (JSON-safe)."""
    return x if math.isfinite(x) else 1e12
