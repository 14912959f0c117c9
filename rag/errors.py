"""kefu's own exceptions. Callers (CLI, server) map them to exit codes and HTTP statuses.

KefuError
├── ConfigError              a setting is missing or unsafe; says what to set
├── ModelUnavailable         a model is not pulled, not loadable, or its service is down
├── StoreUnavailable         the vector store or SQLite cannot be opened or reached
├── EmbeddingModelMismatch   the index was built with another embedding model
├── IngestError              a document could not be ingested
│   ├── UnsupportedFile      no loader for this file type
│   └── UnreadableFile       empty, encrypted, corrupt or undecodable
├── ConnectorUnavailable     a storefront API (Shopify, WooCommerce, Magento) is down or throttling
│   └── ConnectorAuthError   the storefront refused kefu's credentials (401/403)
├── NotFound                 an id (document, session, handoff, order) does not exist
└── InvalidInput             a request is malformed or too large
"""

from __future__ import annotations


class KefuError(Exception):
    """Base of every error kefu raises on purpose."""


class ConfigError(KefuError):
    pass


class ModelUnavailable(KefuError):
    pass


class StoreUnavailable(KefuError):
    pass


class EmbeddingModelMismatch(KefuError):
    pass


class IngestError(KefuError):
    pass


class UnsupportedFile(IngestError):
    pass


class UnreadableFile(IngestError):
    pass


class ConnectorUnavailable(KefuError):
    pass


class ConnectorAuthError(ConnectorUnavailable):
    pass


class NotFound(KefuError):
    pass


class InvalidInput(KefuError):
    pass
