"""A synthetic catalog for scale benchmarks: N products × V variants as a Shopify product CSV.

    .venv/bin/python -m bench.catalog OUT.csv [--products 10000] [--variants 8] [--seed 7]

Titles are built from word lists in twelve languages (a cross-border store lists some products
under their maker's name: "Nordic Oak Desk Lamp", "Lámpara de escritorio Roble", "北欧橡木台灯"),
each product has a description with a spec list (material, size, weight, care, warranty, box
contents) and its variants vary by colour, size or plug type, with their own SKU, price, weight
and stock, as real Shopify exports do (the first row of a product carries its title and body,
the following rows only the variant columns). Deterministic for a seed.
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

# (adjectives, materials, nouns) per language; titles mix them in the language's word order
_WORDS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "en": (
        ["Nordic", "Compact", "Slim", "Classic", "Harbor", "Solar", "Velvet", "Urban"],
        ["Oak", "Bamboo", "Ceramic", "Steel", "Linen", "Walnut", "Glass", "Cotton"],
        ["Desk Lamp", "Power Bank", "Mug", "Kettle", "Backpack", "Yoga Mat", "Tea Set", "Blanket"],
    ),
    "es": (
        ["Nórdica", "Compacta", "Clásica", "Urbana", "Solar", "Suave"],
        ["de roble", "de bambú", "de cerámica", "de acero", "de lino", "de vidrio"],
        ["Lámpara de escritorio", "Batería externa", "Taza", "Hervidor", "Mochila", "Manta"],
    ),
    "de": (
        ["Nordische", "Kompakte", "Klassische", "Urbane", "Sanfte"],
        ["Eichen", "Bambus", "Keramik", "Edelstahl", "Leinen", "Glas"],
        ["Schreibtischlampe", "Powerbank", "Tasse", "Wasserkocher", "Rucksack", "Decke"],
    ),
    "fr": (
        ["Nordique", "Compacte", "Classique", "Urbaine", "Douce"],
        ["en chêne", "en bambou", "en céramique", "en acier", "en lin", "en verre"],
        ["Lampe de bureau", "Batterie externe", "Tasse", "Bouilloire", "Sac à dos", "Couverture"],
    ),
    "pt": (
        ["Nórdica", "Compacta", "Clássica", "Urbana", "Macia"],
        ["de carvalho", "de bambu", "de cerâmica", "de aço", "de linho", "de vidro"],
        ["Luminária de mesa", "Carregador portátil", "Caneca", "Chaleira", "Mochila", "Manta"],
    ),
    "it": (
        ["Nordica", "Compatta", "Classica", "Urbana", "Morbida"],
        ["in rovere", "in bambù", "in ceramica", "in acciaio", "in lino", "in vetro"],
        ["Lampada da scrivania", "Power bank", "Tazza", "Bollitore", "Zaino", "Coperta"],
    ),
    "ja": (
        ["北欧", "コンパクト", "クラシック", "アーバン", "やわらか"],
        ["オーク", "竹", "陶器", "ステンレス", "リネン", "ガラス"],
        ["デスクライト", "モバイルバッテリー", "マグカップ", "電気ケトル", "リュック", "毛布"],
    ),
    "zh": (
        ["北欧", "便携", "经典", "都市", "柔软"],
        ["橡木", "竹制", "陶瓷", "不锈钢", "亚麻", "玻璃"],
        ["台灯", "充电宝", "马克杯", "电热水壶", "双肩包", "毛毯"],
    ),
    "ko": (
        ["노르딕", "컴팩트", "클래식", "어반", "부드러운"],
        ["오크", "대나무", "세라믹", "스테인리스", "린넨", "유리"],
        ["데스크 램프", "보조배터리", "머그컵", "전기주전자", "백팩", "담요"],
    ),
    "ru": (
        ["Северная", "Компактная", "Классическая", "Городская", "Мягкая"],
        ["дубовая", "бамбуковая", "керамическая", "стальная", "льняная", "стеклянная"],
        ["настольная лампа", "кружка", "сумка", "подставка", "корзина", "накидка"],
    ),
    "ar": (
        ["شمالي", "مدمج", "كلاسيكي", "عصري", "ناعم"],
        ["خشب البلوط", "الخيزران", "السيراميك", "الفولاذ", "الكتان", "الزجاج"],
        ["مصباح مكتب", "شاحن متنقل", "كوب", "غلاية", "حقيبة ظهر", "بطانية"],
    ),
    "tr": (
        ["İskandinav", "Kompakt", "Klasik", "Şehir", "Yumuşak"],
        ["meşe", "bambu", "seramik", "çelik", "keten", "cam"],
        ["masa lambası", "şarj cihazı", "kupa", "su ısıtıcısı", "sırt çantası", "battaniye"],
    ),
}
_COLOURS = ["Black", "White", "Sage Green", "Navy", "Sand", "Terracotta", "Grey", "Blush"]
_SIZES = ["S", "M", "L", "XL", "20 cm", "26 cm", "350 ml", "500 ml", "1 L", "1.7 L"]
_PLUGS = ["EU plug (Type C/F)", "UK plug (Type G)", "US plug (Type A/B)", "AU plug (Type I)"]
_HEADER = [
    "Handle", "Title", "Body (HTML)", "Vendor", "Product Category", "Type", "Tags", "Published",
    "Option1 Name", "Option1 Value", "Option2 Name", "Option2 Value", "Variant SKU",
    "Variant Grams", "Variant Inventory Qty", "Variant Price", "Variant Compare At Price", "Status",
]  # fmt: skip


def _title(rng: random.Random, lang: str, n: int) -> str:
    adjectives, materials, nouns = _WORDS[lang]
    a, m, noun = rng.choice(adjectives), rng.choice(materials), rng.choice(nouns)
    if lang in ("en", "de"):
        return f"{a} {m} {noun} {n}"
    if lang in ("ja", "zh", "ko"):
        return f"{a}{m}{noun} {n}"
    if lang in ("ru", "tr"):
        return f"{a} {m} {noun} {n}"
    return f"{noun} {m} {a} {n}"  # es, fr, pt, it, ar: noun first


def _body(rng: random.Random, title: str) -> str:
    cm = rng.randint(8, 80)
    specs = [
        ("Material", rng.choice(["oak", "bamboo", "stoneware", "stainless steel", "linen"])),
        ("Dimensions", f"{cm} × {rng.randint(5, 60)} × {rng.randint(2, 40)} cm"),
        ("Weight", f"{rng.randint(120, 4800)} g"),
        ("Care", rng.choice(["hand wash only", "dishwasher safe", "wipe clean", "wash at 30°C"])),
        ("Warranty", f"{rng.choice([12, 24, 36])} months against manufacturing defects"),
        ("In the box", rng.choice(["the product, a user guide", "the product, a USB-C cable"])),
    ]
    items = "".join(f"<li><strong>{k}:</strong> {v}</li>" for k, v in specs)
    lead = (
        f"<p>{title} is made in small batches and ships from our warehouse within "
        f"{rng.randint(1, 5)} business days. Each piece is checked by hand before packing, "
        f"so small variations in colour and grain are part of its character.</p>"
    )
    return f"{lead}<ul>{items}</ul>"


def generate(path: Path, *, products: int, variants: int, seed: int = 7) -> int:
    """Writes the catalog; returns the number of variant rows."""
    rng = random.Random(seed)
    langs = list(_WORDS)
    rows = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(_HEADER)
        for n in range(1, products + 1):
            lang = "en" if rng.random() < 0.5 else rng.choice(langs)
            title = _title(rng, lang, n)
            handle = f"p-{n:06d}"
            kind = rng.choice(["colour", "size", "plug"])
            base = rng.randint(8, 240)
            for v in range(variants):
                if kind == "plug":
                    o1n, o1 = "Plug", _PLUGS[v % len(_PLUGS)]
                    o2n, o2 = "Colour", _COLOURS[(v // len(_PLUGS)) % len(_COLOURS)]
                else:
                    o1n, o1 = "Colour", _COLOURS[v % len(_COLOURS)]
                    o2n, o2 = "Size", _SIZES[(v // len(_COLOURS) + n) % len(_SIZES)]
                price = f"{base + 2 * (v % 3):.2f}"
                first = v == 0
                w.writerow(
                    [
                        handle,
                        title if first else "",
                        _body(rng, title) if first else "",
                        "Jade Harbor" if first else "",
                        "Home & Living" if first else "",
                        rng.choice(["Lighting", "Kitchen", "Travel", "Textiles"]) if first else "",
                        f"{lang}, bench" if first else "",
                        "TRUE" if first else "",
                        o1n if first else "",
                        o1,
                        o2n if first else "",
                        o2,
                        f"JH-{n:06d}-{v:02d}",
                        str(rng.randint(100, 5000)),
                        str(rng.choice([0, 0, 3, 12, 40, 150])),
                        price,
                        f"{float(price) * 1.25:.2f}" if rng.random() < 0.2 else "",
                        "active" if first else "",
                    ]
                )
                rows += 1
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--products", type=int, default=10_000)
    ap.add_argument("--variants", type=int, default=8)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rows = generate(args.out, products=args.products, variants=args.variants, seed=args.seed)
    print(f"{args.out}: {args.products} products, {rows} variant rows")


if __name__ == "__main__":
    main()
