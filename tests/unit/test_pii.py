"""PII is found in many formats, replaced by placeholders, restored only in-process."""

from __future__ import annotations

import logging

import pytest

from rag.guardrails.pii import RedactingFilter, iban_ok, luhn_ok, redact


@pytest.mark.parametrize(
    ("text", "secret", "kind"),
    [
        ("write me at jane.doe+shop@example.co.uk", "jane.doe+shop@example.co.uk", "EMAIL"),
        ("call +44 20 7946 0958 after 5", "+44 20 7946 0958", "PHONE"),
        ("mi número es +52 55 1234 5678", "+52 55 1234 5678", "PHONE"),
        ("我的手机 13800138000", "13800138000", "PHONE"),
        ("card 4111 1111 1111 1111 please refund", "4111 1111 1111 1111", "CARD"),
        ("Karte 5500-0000-0000-0004 belastet", "5500-0000-0000-0004", "CARD"),
        ("IBAN DE89 3704 0044 0532 0130 00", "DE89 3704 0044 0532 0130 00", "IBAN"),
        ("ship to 221B Baker Street, London", "221B Baker Street", "ADDRESS"),
        ("envíalo a Calle Mayor 12, Madrid", "Calle Mayor 12", "ADDRESS"),
        ("寄到上海市南京路100号", "上海市南京路100号", "ADDRESS"),
    ],
)
def test_pii_is_redacted_and_restorable(text: str, secret: str, kind: str) -> None:
    red = redact(text)
    assert secret not in red.text
    assert kind in red.kinds
    assert red.restore(red.text) == text


def test_business_numbers_are_not_pii() -> None:
    text = "Order 1042 costs $25.00, ships in 10–18 days, SKU JH-CER-MUG-BLU, €150 limit"
    assert redact(text).text == text


def test_invalid_card_and_iban_are_left_alone() -> None:
    assert not luhn_ok("4111111111111112")
    assert not iban_ok("DE00 3704 0044 0532 0130 00")
    assert redact("ref 4111 1111 1111 1112").text == "ref 4111 1111 1111 1112"


def test_same_value_gets_the_same_placeholder() -> None:
    red = redact("a@b.com wrote; reply to a@b.com")
    assert red.text == "[EMAIL_1] wrote; reply to [EMAIL_1]"


def test_log_records_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("kefu.test")
    caplog.handler.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="kefu.test"):
        log.info("customer %s paid with %s", "jane@example.com", "4111 1111 1111 1111")
    assert "jane@example.com" not in caplog.text
    assert "4111" not in caplog.text
    assert "[EMAIL_1]" in caplog.text
