"""Product catalogs: Shopify product CSV, WooCommerce product CSV, and JSON.

Each product becomes one document holding its variants, prices and attributes as text (for
retrieval and answering) and as metadata (SKUs, price range) for exact lookups.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.loaders import LoadOptions
from ingest.loaders.common import read_text
from rag.errors import UnreadableFile, UnsupportedFile
from rag.types import SourceDocument


@dataclass
class Variant:
    options: list[tuple[str, str]] = field(default_factory=list)
    sku: str = ""
    price: str = ""
    compare_at: str = ""
    grams: str = ""
    inventory: str = ""


@dataclass
class Product:
    key: str
    title: str = ""
    description: str = ""
    vendor: str = ""
    product_type: str = ""
    tags: str = ""
    status: str = "active"
    variants: list[Variant] = field(default_factory=list)
    attributes: list[tuple[str, str]] = field(default_factory=list)


def _html_to_text(html: str) -> str:
    if "<" not in html:
        return html.strip()
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for li in soup.find_all("li"):
        li.insert_before("\n- ")
    text = soup.get_text(" ")
    lines = [" ".join(ln.split()) for ln in text.splitlines()]
    return "\n".join(ln for ln in lines if ln)


def _num(s: str) -> float | None:
    try:
        return float(s.replace(",", "")) if s.strip() else None
    except ValueError:
        return None


def _render(p: Product, currency: str) -> str:
    lines = [f"Product: {p.title}"]
    if p.vendor:
        lines.append(f"Brand: {p.vendor}")
    if p.product_type:
        lines.append(f"Category: {p.product_type}")
    if p.tags:
        lines.append(f"Tags: {p.tags}")
    for name, value in p.attributes:
        lines.append(f"{name}: {value}")
    if p.description:
        lines.append(f"Description: {_html_to_text(p.description)}")
    if p.variants:
        lines.append("Variants:")
    for v in p.variants:
        opts = " / ".join(f"{n}: {val}" for n, val in v.options if val and val != "Default Title")
        parts = [opts] if opts else []
        if v.sku:
            parts.append(f"SKU {v.sku}")
        if v.price:
            price = f"price {v.price} {currency}"
            if v.compare_at and (_num(v.compare_at) or 0) > (_num(v.price) or 0):
                price += f" (was {v.compare_at} {currency})"
            parts.append(price)
        if v.grams and (_num(v.grams) or 0) > 0:
            parts.append(f"weight {v.grams} g")
        if v.inventory != "":
            qty = _num(v.inventory)
            if qty is not None:
                parts.append("in stock" if qty > 0 else "sold out")
        lines.append("- " + ", ".join(parts))
    return "\n".join(lines)


def _documents(
    products: list[Product], path: Path, doc_id: str, currency: str
) -> list[SourceDocument]:
    out: list[SourceDocument] = []
    for p in products:
        if p.status.lower() in {"draft", "archived", "private", "pending", "trash"}:
            continue  # not on sale: shoppers must not be told about it
        if not p.title:
            continue
        prices = [x for x in (_num(v.price) for v in p.variants) if x is not None]
        extra: dict[str, str | int | float | bool] = {
            "handle": p.key,
            "skus": ",".join(v.sku for v in p.variants if v.sku),
            "currency": currency,
        }
        if prices:
            extra["price_min"] = min(prices)
            extra["price_max"] = max(prices)
        if p.vendor:
            extra["vendor"] = p.vendor
        out.append(
            SourceDocument(
                doc_id=f"{doc_id}#{p.key}",
                source=str(path),
                title=p.title,
                text=_render(p, currency),
                doc_type="product",
                markets=("ALL",),
                extra=extra,
            )
        )
    return out


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    text = read_text(path)
    try:
        reader = csv.DictReader(io.StringIO(text))
        rows = [{k: (v or "").strip() for k, v in r.items() if k} for r in reader]
    except csv.Error as exc:
        raise UnreadableFile(f"{path.name}: malformed CSV ({exc})") from exc
    return list(reader.fieldnames or []), rows


def load_csv(path: Path, doc_id: str, options: LoadOptions) -> list[SourceDocument]:
    header, rows = _rows(path)
    cols = set(header)
    if {"Handle", "Variant Price"} <= cols or {"Handle", "Title"} <= cols:
        return _documents(_shopify(rows), path, doc_id, options.currency)
    if {"Name", "Regular price"} <= cols or {"SKU", "Name", "Type"} <= cols:
        return _documents(_woocommerce(rows), path, doc_id, options.currency)
    raise UnsupportedFile(
        f"{path.name}: CSV is neither a Shopify nor a WooCommerce product export "
        f"(columns: {', '.join(header[:6])}…)"
    )


def _shopify(rows: list[dict[str, str]]) -> list[Product]:
    products: dict[str, Product] = {}
    option_names: dict[str, list[str]] = {}
    for r in rows:
        handle = r.get("Handle", "")
        if not handle:
            continue
        p = products.get(handle)
        if p is None:
            p = products[handle] = Product(key=handle)
            option_names[handle] = [r.get(f"Option{i} Name", "") for i in (1, 2, 3)]
        if r.get("Title"):  # the product's first row carries its fields
            p.title = r["Title"]
            p.description = r.get("Body (HTML)", "")
            p.vendor = r.get("Vendor", "")
            p.product_type = r.get("Type", "") or r.get("Product Category", "")
            p.tags = r.get("Tags", "")
            p.status = r.get("Status", "") or (
                "active" if r.get("Published", "true").lower() != "false" else "draft"
            )
        if not (r.get("Variant SKU") or r.get("Variant Price") or r.get("Option1 Value")):
            continue  # an image-only row
        names = option_names[handle]
        p.variants.append(
            Variant(
                options=[
                    (names[i - 1] or f"Option {i}", r.get(f"Option{i} Value", ""))
                    for i in (1, 2, 3)
                    if r.get(f"Option{i} Value")
                ],
                sku=r.get("Variant SKU", ""),
                price=r.get("Variant Price", ""),
                compare_at=r.get("Variant Compare At Price", ""),
                grams=r.get("Variant Grams", ""),
                inventory=r.get("Variant Inventory Qty", ""),
            )
        )
    return list(products.values())


def _woocommerce(rows: list[dict[str, str]]) -> list[Product]:
    products: dict[str, Product] = {}
    by_ref: dict[str, Product] = {}
    pending: list[dict[str, str]] = []
    for r in rows:
        kind = r.get("Type", "simple").lower()
        if kind == "variation":
            pending.append(r)
            continue
        key = r.get("SKU") or r.get("ID") or r.get("Name", "")
        p = Product(
            key=key,
            title=r.get("Name", ""),
            description=r.get("Description", "") or r.get("Short description", ""),
            product_type=r.get("Categories", ""),
            tags=r.get("Tags", ""),
            status="active" if r.get("Published", "1") in {"1", "true", ""} else "draft",
        )
        attrs = _woo_attributes(r)
        if kind == "variable":
            p.attributes = [(n, v) for n, v in attrs]
        else:
            p.variants.append(_woo_variant(r, attrs))
        products[key] = p
        for ref in (r.get("ID"), r.get("SKU")):
            if ref:
                by_ref[ref] = p
                by_ref[f"id:{ref}"] = p
    for r in pending:
        parent = r.get("Parent", "")
        owner = by_ref.get(parent) or by_ref.get(parent.removeprefix("id:"))
        if owner is not None:
            owner.variants.append(_woo_variant(r, _woo_attributes(r)))
    return list(products.values())


def _woo_attributes(r: dict[str, str]) -> list[tuple[str, str]]:
    out = []
    for i in range(1, 10):
        name = r.get(f"Attribute {i} name")
        if name is None:
            break
        if name:
            out.append((name, r.get(f"Attribute {i} value(s)", "")))
    return out


def _woo_variant(r: dict[str, str], attrs: list[tuple[str, str]]) -> Variant:
    sale, regular = r.get("Sale price", ""), r.get("Regular price", "")
    stock = r.get("Stock", "")
    if not stock and r.get("In stock?") in {"0", "1"}:
        stock = r["In stock?"]
    return Variant(
        options=attrs,
        sku=r.get("SKU", ""),
        price=sale or regular,
        compare_at=regular if sale else "",
        grams=str(int(float(r["Weight (kg)"]) * 1000)) if _num(r.get("Weight (kg)", "")) else "",
        inventory=stock,
    )


def load_json(path: Path, doc_id: str, options: LoadOptions) -> list[SourceDocument]:
    try:
        data: Any = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise UnreadableFile(f"{path.name}: invalid JSON ({exc.msg} at line {exc.lineno})") from exc
    items = data.get("products") if isinstance(data, dict) else data
    if isinstance(data, dict) and items is None and "title" in data:
        items = [data]
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        raise UnsupportedFile(
            f"{path.name}: JSON must be a list of products or {{'products': [...]}}"
        )
    products: list[Product] = []
    for i, item in enumerate(items):
        title = str(item.get("title") or item.get("name") or "")
        key = str(item.get("handle") or item.get("sku") or item.get("id") or i)
        p = Product(
            key=key,
            title=title,
            description=str(item.get("body_html") or item.get("description") or ""),
            vendor=str(item.get("vendor") or item.get("brand") or ""),
            product_type=str(item.get("product_type") or item.get("category") or ""),
            tags=", ".join(item["tags"])
            if isinstance(item.get("tags"), list)
            else str(item.get("tags") or ""),
            status=str(item.get("status") or "active"),
        )
        names = [str(o.get("name", "")) for o in item.get("options", []) if isinstance(o, dict)]
        variants = item.get("variants") or [item]
        for v in variants:
            if not isinstance(v, dict):
                continue
            opts = [
                (names[j - 1] if j <= len(names) else f"Option {j}", str(v.get(f"option{j}")))
                for j in (1, 2, 3)
                if v.get(f"option{j}")
            ]
            p.variants.append(
                Variant(
                    options=opts,
                    sku=str(v.get("sku") or ""),
                    price=str(v.get("price") or ""),
                    compare_at=str(v.get("compare_at_price") or ""),
                    grams=str(v.get("grams") or ""),
                    inventory=""
                    if v.get("inventory_quantity") is None
                    else str(v.get("inventory_quantity")),
                )
            )
        products.append(p)
    return _documents(products, path, doc_id, options.currency)
