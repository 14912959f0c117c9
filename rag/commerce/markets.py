"""Markets: which documents apply to a shopper's destination country."""

from __future__ import annotations

from rag.lang.countries import CODE_ALIASES

EU = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split()  # noqa: SIM905
)
REGIONS: dict[str, frozenset[str]] = {"EU": EU}


def normalize_market(code: str) -> str:
    c = code.strip().upper()
    return CODE_ALIASES.get(c, c)


def applicable_markets(country: str) -> list[str]:
    """Document market tags that apply to a shopper in `country` (itself, its regions, ALL)."""
    c = normalize_market(country)
    out = [c]
    out.extend(region for region, members in REGIONS.items() if c in members)
    out.append("ALL")
    return out


def is_specific_to(markets: tuple[str, ...], country: str) -> bool:
    """True when a document targets this country or its region rather than everyone."""
    wanted = set(applicable_markets(country)) - {"ALL"}
    return bool(wanted & {normalize_market(m) for m in markets})
