"""The names callers imported before the conversation store became a port.

New code takes `rag.ports.ConversationStore` and `rag.conversations.types.Turn`; the store is
built by `rag.container` (SQLite, or PostgreSQL when KEFU_DATABASE__URL is set). Here
`ConversationStore(path)` still opens the SQLite store, for the callers that construct one."""

from __future__ import annotations

from rag.adapters.sqlite_conversations import SqliteConversations as ConversationStore
from rag.conversations.types import Turn, attempt_key

__all__ = ["ConversationStore", "Turn", "attempt_key"]
