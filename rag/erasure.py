"""Erasure (the right to be forgotten): one request removes a shopper from everywhere kefu keeps
them. A service the container builds, so the server and the CLI erase the same way."""

from __future__ import annotations

import logging

from rag.errors import KefuError
from rag.ports import ConversationStore, OrderConnector

log = logging.getLogger(__name__)


class Erasure:
    def __init__(self, conversations: ConversationStore, commerce: OrderConnector | None) -> None:
        self.conversations = conversations
        self.commerce = commerce

    def erase(self, customer: str) -> dict[str, int]:
        """Erase a shopper's conversations, handoffs and session state (under their customer id
        and e-mail) and, in the embedded order store, their profile and the personal fields of
        their orders. Returns counts: the receipt.

        Blocking (SQLite, and a storefront lookup with its retries): the server runs it in a
        worker thread."""
        keys = {customer.strip()}
        profile = None
        if self.commerce is not None:
            try:
                profile = self.commerce.get_customer(customer)
            except KefuError as exc:  # the storefront is down: erase what is here anyway
                log.warning("customer lookup for erasure failed (%s)", exc.__class__.__name__)
        if profile is not None:
            keys |= {k for k in (profile.id, profile.email) if k}
        receipt = {"sessions": 0, "turns": 0, "handoffs": 0}
        for key in sorted(keys):
            for k, v in self.conversations.erase_customer(key).items():
                receipt[k] = receipt.get(k, 0) + v
        erase = getattr(self.commerce, "erase_customer", None)  # only the embedded store
        if callable(erase):
            for k, v in erase(customer).items():
                receipt[k] = int(v)
        return receipt
