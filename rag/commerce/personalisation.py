"""Personalisation: seller rules on the customer profile -> facts for the reply, or routing.

Rules live in a YAML file the seller edits (KEFU_COMMERCE__RULES_FILE; the sample store's is
examples/sample_store/commerce/personalisation.yaml, which documents the format). Code applies
them; the reply receives only the resulting facts, never the profile itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rag.commerce.types import Customer
from rag.errors import ConfigError


class Conditions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tags_any: list[str] = Field(default_factory=list)
    tags_all: list[str] = Field(default_factory=list)
    orders_min: int | None = None
    orders_max: int | None = None
    spent_min: Decimal | None = None
    spent_max: Decimal | None = None
    first_purchase: bool | None = None
    countries: list[str] = Field(default_factory=list)


class Routing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = "vip"
    emotion_below: float | None = None
    max_failures: int | None = None
    low_confidence: bool = False
    order_problem: bool = False


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    when: Conditions = Field(default_factory=Conditions)
    say: dict[str, str] = Field(default_factory=dict)
    escalate: Routing | None = None

    def matches(self, c: Customer) -> bool:
        w = self.when
        tags = {t.casefold() for t in c.tags}
        try:
            spent = Decimal(c.total_spent)
        except InvalidOperation:
            spent = Decimal(0)
        checks = [
            not w.tags_any or bool(tags & {t.casefold() for t in w.tags_any}),
            {t.casefold() for t in w.tags_all} <= tags,
            w.orders_min is None or c.orders_count >= w.orders_min,
            w.orders_max is None or c.orders_count <= w.orders_max,
            w.spent_min is None or spent >= w.spent_min,
            w.spent_max is None or spent <= w.spent_max,
            w.first_purchase is None or c.first_purchase == w.first_purchase,
            not w.countries or (c.country or "").upper() in {x.upper() for x in w.countries},
        ]
        return all(checks)


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[Rule] = Field(default_factory=list)


@dataclass
class Personal:
    """What the rules decided for one customer."""

    rule_ids: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)
    routing: Routing | None = None


class Personaliser:
    def __init__(self, rules: list[Rule]) -> None:
        ids = [r.id for r in rules]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ConfigError(f"personalisation rule ids must be unique: {', '.join(dupes)}")
        self.rules = rules

    @classmethod
    def from_file(cls, path: Path) -> Personaliser:
        try:
            data: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            return cls(RuleFile.model_validate(data).rules)
        except OSError as exc:
            raise ConfigError(f"personalisation rules {path}: {exc.strerror}") from exc
        except (yaml.YAMLError, ValidationError) as exc:
            raise ConfigError(f"personalisation rules {path} are invalid: {exc}") from exc

    def apply(self, customer: Customer | None, language: str) -> Personal:
        out = Personal()
        if customer is None:
            return out
        for rule in self.rules:
            if not rule.matches(customer):
                continue
            out.rule_ids.append(rule.id)
            text = rule.say.get(language) or rule.say.get("en") or next(iter(rule.say.values()), "")
            if text:
                out.facts.append(text.strip())
            if rule.escalate is not None and out.routing is None:
                out.routing = rule.escalate
        return out
