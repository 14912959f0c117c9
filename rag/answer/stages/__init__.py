"""The stages: each drafts the reply to one kind of turn (see rag/answer/router.py)."""
