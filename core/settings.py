"""Process settings from the environment (pydantic-settings) with a cached getter."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The checkout (or installed tree) root: holds ``data/`` with the shipped catalog, ratings, policies."""


EncoderName = Literal["e5", "none"]
"""The search index's sentence encoder setting: ``e5`` (multilingual-e5-small, the default) or ``none`` (lexical only)."""
ENCODER_NAMES: tuple[str, ...] = get_args(EncoderName)

RouterEncoderName = Literal["use", "e5", "none"]
"""The local router's sentence encoder setting: ``use`` (USE-multilingual v3, the default), ``e5``
(multilingual-e5-small) or ``none`` (lexical only)."""
ROUTER_ENCODER_NAMES: tuple[str, ...] = get_args(RouterEncoderName)

class Settings(BaseSettings):
    """Every tunable of MangaAssist, read from ``MANGAASSIST_*`` environment variables.

    ``DATABASE_URL`` and ``REDIS_URL`` are read without the prefix (the usual names). With neither set,
    the embedded defaults are used: SQLite files under ``data_dir`` and in-process caches.
    """

    model_config = SettingsConfigDict(env_prefix="MANGAASSIST_", extra="ignore")

    profile: Literal["local", "bedrock"] = Field("local", description=(
        "Model profile serving the router/planner/writer/critic roles."))
    data_dir: Path = Field(Path.home() / ".local" / "share" / "mangaassist", description=(
        "Where SQLite checkpoints, orders and trained models live."))
    model_dir: Path = Field(Path.home() / ".cache" / "mangaassist", description=(
        "Cache of the built search index and recommender (and of a router fitted locally when the shipped one in "
        "data/models does not apply), keyed by a hash of their inputs; shared by runs and tests."))
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("WARNING", description=(
        "Log level of CLI commands (stderr); INFO shows start-up stage timings. `serve` has its own --log-level."))
    router_encoder: RouterEncoderName = Field("use", description=(
        "Sentence encoder of the local router: 'use' (USE-multilingual v3, bundled, ~2-3 ms CPU a message; ships "
        "pre-fitted in data/models, a local fit embeds the training set once, ~2-3 min on 2 cores), 'e5' "
        "(multilingual-e5-small, bundled, ~17-24 ms a message, a local fit ~7 min) or 'none' (lexical only, fits "
        "in ~20 s). Figures per encoder in docs/routing.md."))
    shipped_data_dir: Path = Field(PROJECT_ROOT / "data", description=(
        "Read-only shipped data (catalog, ratings, intents, policies)."))
    database_url: str | None = Field(None, validation_alias=AliasChoices("DATABASE_URL", "MANGAASSIST_DATABASE_URL"), description=(
        "postgresql://... ; switches checkpoints, store and orders to Postgres."))
    redis_url: str | None = Field(None, validation_alias=AliasChoices("REDIS_URL", "MANGAASSIST_REDIS_URL"), description=(
        "redis://... ; switches the cache (and server fan-out) to Redis."))
    pool_min_size: int = Field(2, description="psycopg AsyncConnectionPool min_size.")
    pool_max_size: int = Field(10, description="psycopg AsyncConnectionPool max_size.")

    # catalog search backend (docs/search_backends.md)
    search_backend: Literal["memory", "pgvector", "opensearch"] = Field("memory", description=(
        "Catalog index: in-process, pgvector on DATABASE_URL, or OpenSearch."))
    search_encoder: EncoderName = Field("e5", description=(
        "Sentence encoder of the in-process index's LoanwordMatcher: 'e5' matches katakana queries (ブリーチ) to "
        "Latin-script titles (BLEACH) on top of the phonetic matcher, which needs no model; the first build "
        "embeds the catalog's 21.9k Latin title forms once (~3 min on 2 cores). 'none' = the phonetic matcher "
        "only (test loanword R@1 0.75 instead of 0.76). docs/search_backends.md."))
    search_dense_weight: float = Field(0.0, description=(
        "Weight of LSA dense vectors in fusion (0 = lexical + prior only)."))
    opensearch_url: str | None = Field(None, description=(
        "https://... of the OpenSearch cluster (search_backend=opensearch)."))
    opensearch_index: str = Field("manga-catalog", description="OpenSearch index name.")
    opensearch_max_retries: int = Field(3, description="Retries on 429/502/503/504 from OpenSearch.")

    # checkpoints (docs/persistence.md)
    checkpoint_durability: Literal["sync", "async", "exit"] = Field("exit", description=(
        "LangGraph durability of a turn: 'exit' = one checkpoint per turn or interrupt (~7x fewer bytes, 1 row "
        "instead of ~72 per turn; history, replay and fork at turn boundaries); 'async' = a checkpoint per step "
        "(replay from inside a turn, a specialist's steps in Studio: for debugging sessions). "
        "docs/persistence.md."))
    checkpoint_keep_last: int = Field(20, description=(
        "Retention: checkpoints kept per thread by `prune_checkpoints` (the latest is always kept)."))
    checkpoint_max_age_days: int | None = Field(30, description=(
        "Retention: drop checkpoints older than this (None = no age limit)."))

    # conversation state
    message_window: int = Field(12, description="Messages kept in checkpointed state (older ones are trimmed).")
    max_reflections: int = Field(2, description="Default bound on reflect→think loops per specialist run.")
    latency_budget_ms: float = Field(3000.0, description="Default latency budget per turn (ms).")
    search_k: int = Field(5, description="Catalog items a search answer presents.")

    # bedrock profile
    aws_region: str = Field("us-east-1", description="Bedrock region.")
    aws_fallback_region: str | None = Field("us-west-2", description="Second region tried on throttling/timeouts.")
    router_model: str = Field("anthropic.claude-3-haiku-20240307-v1:0", description=(
        "Model id (bedrock) or provider:model for the router role."))
    critic_model: str = Field("anthropic.claude-3-haiku-20240307-v1:0", description="Critic role model.")
    planner_model: str = Field("anthropic.claude-3-5-sonnet-20240620-v1:0", description="Planner role model.")
    writer_model: str = Field("anthropic.claude-3-5-sonnet-20240620-v1:0", description="Writer role model.")
    model_timeout_s: float = Field(10.0, description="Per-call read timeout for remote models (s).")
    model_connect_timeout_s: float = Field(2.0, description="Connect timeout of the bedrock-runtime client (s).")
    model_max_tokens: int = Field(1024, description=(
        "max_tokens of every remote model call (also the output-token estimate of the pre-call USD check)."))
    model_streaming: bool = Field(True, description="Stream the writer's tokens (ConverseStream); False uses Converse.")
    agent_model: str = Field("anthropic.claude-3-haiku-20240307-v1:0", description=(
        "Tool-calling model of the specialists' think role."))
    small_model: str = Field("anthropic.claude-3-haiku-20240307-v1:0", description=(
        "The smaller model a large-model role falls back to (Sonnet → Haiku)."))
    model_prices: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {"haiku": (0.25, 1.25), "sonnet": (3.0, 15.0)},
        description=(
            "USD per 1M (input, output) tokens; a key matches a model id that contains it (longest key wins). "
            "Setting it replaces the default map; a remote model no key matches is a start-up error while any USD "
            "budget is finite (docs/bedrock.md)."))
    model_expected_ms: dict[str, float] = Field(
        default_factory=lambda: {"haiku": 400.0, "sonnet": 1500.0},
        description=(
            "Typical latency of one call (ms) per model key; a tier is skipped when less time than this is left."))
    model_retries: int = Field(2, description=(
        "Attempts per model on transient errors (throttling, 5xx, read timeout) before falling back."))
    breaker_failures: int = Field(3, description="Consecutive failures that open a model's circuit breaker.")
    breaker_open_s: float = Field(30.0, description="How long an open circuit breaker skips its model (s).")
    usd_budget_turn: float = Field(0.05, description="Max model spend of one turn (USD), checked before each call.")
    usd_budget_session: float = Field(1.00, description="Max model spend of one thread (USD).")
    usd_budget_user_day: float = Field(5.00, description=(
        "Max model spend of one user per UTC day (USD), across all of the user's threads; once reached, the "
        "server refuses new turns (429 daily_budget_exceeded) until 00:00 UTC."))
    tokens_budget_user_day: int | None = Field(None, gt=0, description=(
        "Max model tokens (input + output) of one user per UTC day, across threads; once reached, the server "
        "refuses new turns (429) until 00:00 UTC. None = no token cap."))
    max_replans: int = Field(1, description="Bounded replans of a plan whose step failed.")

    # server
    auth: Literal["on", "off"] = Field("on", description="'off' = dev mode without API keys (local use only).")
    host: str = "127.0.0.1"
    port: int = 8000

    def sqlite_path(self, name: str) -> Path:
        """Path of an embedded SQLite database ``<data_dir>/<name>.sqlite`` (creates the folder)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir / f"{name}.sqlite"


def env_var_names(field: str) -> list[str]:
    """The environment variable(s) that set ``field`` of ``Settings``: its aliases (``DATABASE_URL``,
    ``MANGAASSIST_DATABASE_URL``) or ``MANGAASSIST_<FIELD>``. KeyError for an unknown field."""
    info = Settings.model_fields[field]
    if isinstance(info.validation_alias, AliasChoices):
        return [str(c) for c in info.validation_alias.choices]
    return [Settings.model_config["env_prefix"] + field.upper()]


def describe_settings_error(exc: ValidationError) -> str:
    """One line per invalid setting, naming the environment variable, the value given and what is accepted, e.g.
    ``MANGAASSIST_ROUTER_ENCODER='bert': Input should be 'use', 'e5' or 'none'`` (from pydantic's own messages)."""
    lines = []
    for err in exc.errors(include_url=False):
        field = str(err["loc"][0]) if err["loc"] else ""
        try:
            names = " or ".join(env_var_names(field))
        except KeyError:
            names = field or "settings"
        value = err.get("input")
        shown = f"={value!r}" if isinstance(value, (str, int, float)) else ""
        lines.append(f"{names}{shown}: {err['msg']}")
    return "\n".join(lines)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once. Tests build ``Settings(...)`` directly instead."""
    return Settings()
