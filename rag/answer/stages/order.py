"""The order stage: where a parcel is. The reply is built from order data
(rag/commerce/orders.py), never generated."""

from __future__ import annotations

import time
from dataclasses import replace

from rag.answer.draft import Draft, Drafting, ms, whole
from rag.answer.turn import TurnContext
from rag.commerce.orders import OrderAssistant
from rag.guardrails.escalation import Escalation


class OrderStage:
    def __init__(self, orders: OrderAssistant) -> None:
        self.orders = orders

    def draft(self, turn: TurnContext) -> Drafting:
        t = time.perf_counter()
        req, routing = turn.request, turn.personal.routing
        out = self.orders.handle(
            req.message,
            lang=turn.language,
            session_id=turn.session_id,
            email=req.email,
            customer_id=req.customer_id,
            order_problem_to_human=bool(routing and routing.order_problem),
            client_address=req.client_address,
        )
        draft = Draft(
            text=out.text,
            mode=out.mode,
            sources=tuple(out.sources),
            intent="order_status",
            confidence=1.0 if out.mode == "order" else 0.0,
            escalation=turn.signals,
            order=out.order_number,
            customer_id=out.customer_id,
            timings={"order": ms(t)},
        )
        if out.escalate:  # a late parcel, a failed delivery, too many failed checks
            escalation = Escalation(True, out.escalate, turn.signals.score)
            return whole(replace(draft, mode="order_handoff", escalation=escalation, hand_off=True))
        return whole(draft)
