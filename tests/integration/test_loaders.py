"""Every loader on real files, and bad files reported by name with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.loaders import LoadOptions, load_file
from rag.errors import UnreadableFile, UnsupportedFile
from tests.conftest import FIXTURES, SAMPLE_STORE

DOCS = SAMPLE_STORE / "docs"


def test_markdown_front_matter_sets_type_markets_language() -> None:
    [doc] = load_file(DOCS / "customs" / "eu-ioss.md", "docs/customs/eu-ioss.md")
    assert doc.doc_type == "customs"
    assert doc.markets == ("EU",)
    assert doc.language == "en"
    assert "€150" in doc.text
    assert not doc.text.startswith("---")


def test_markdown_in_chinese_and_spanish() -> None:
    [zh] = load_file(DOCS / "zh" / "shipping-faq-zh.md", "zh.md")
    [es] = load_file(DOCS / "es" / "envios-mexico.md", "es.md")
    assert zh.language == "zh"
    assert "锂电池" in zh.text
    assert es.language == "es"
    assert es.markets == ("MX",)


def test_html_keeps_text_and_meta_drops_markup() -> None:
    [doc] = load_file(DOCS / "other" / "about-us.html", "about-us.html")
    assert doc.title
    assert "<" not in doc.text
    assert "Shenzhen" in doc.text
    assert doc.doc_type == "other"


def test_plain_text_title_is_first_line(tmp_path: Path) -> None:
    f = tmp_path / "note.txt"
    f.write_text("Packaging policy\n\nWe ship in recycled boxes.\n", encoding="utf-8")
    [doc] = load_file(f, "note.txt")
    assert doc.title == "Packaging policy"
    assert "recycled boxes" in doc.text


def test_text_in_legacy_encoding_is_decoded(tmp_path: Path) -> None:
    f = tmp_path / "gbk.txt"
    f.write_bytes("退货政策\n\n收到商品后三十天内可以申请退货，运费由买家承担。".encode("gbk"))
    [doc] = load_file(f, "gbk.txt")
    assert "三十天" in doc.text


def test_pdf(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.set_title("Warranty terms")
    pdf.multi_cell(0, 8, "Warranty terms\n\nElectronics carry a 12-month warranty.")
    f = tmp_path / "warranty" / "terms.pdf"
    f.parent.mkdir()
    pdf.output(str(f))
    [doc] = load_file(f, "warranty/terms.pdf")
    assert doc.title == "Warranty terms"
    assert "12-month warranty" in doc.text
    assert doc.doc_type == "warranty"  # from the folder


def test_encrypted_pdf_is_reported(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_encryption(owner_password="owner", user_password="secret")
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(0, 10, "confidential")
    f = tmp_path / "locked.pdf"
    pdf.output(str(f))
    with pytest.raises(UnreadableFile, match="encrypted"):
        load_file(f, "locked.pdf")


def test_corrupt_pdf_is_reported(tmp_path: Path) -> None:
    f = tmp_path / "broken.pdf"
    f.write_bytes(b"%PDF-1.4\n this is not really a pdf")
    with pytest.raises(UnreadableFile, match=r"broken\.pdf"):
        load_file(f, "broken.pdf")


def test_docx_headings_and_tables(tmp_path: Path) -> None:
    import docx

    d = docx.Document()
    d.add_heading("Returns policy", level=1)
    d.add_paragraph("You can return items within 30 days of delivery.")
    d.add_heading("Fees", level=2)
    table = d.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "Return label"
    table.rows[0].cells[1].text = "$7.95"
    f = tmp_path / "returns.docx"
    d.save(str(f))
    [doc] = load_file(f, "returns.docx")
    assert doc.title == "Returns policy"
    assert "## Fees" in doc.text
    assert "Return label | $7.95" in doc.text
    assert doc.doc_type == "returns"


def test_shopify_csv_groups_variants_under_products() -> None:
    docs = load_file(SAMPLE_STORE / "catalog" / "products.csv", "catalog/products.csv")
    by_handle = {d.extra["handle"]: d for d in docs}
    mug = by_handle["harbor-glaze-ceramic-mug"]
    assert mug.doc_id == "catalog/products.csv#harbor-glaze-ceramic-mug"
    assert mug.doc_type == "product"
    assert "JH-CER-MUG-GRN" in mug.text
    assert "JH-CER-MUG-WHT" in mug.text
    assert "16.00 USD" in mug.text
    assert "was 20.00 USD" in mug.text
    assert "sold out" in mug.text  # the white variant has no stock
    assert "JH-CER-MUG-GRN" in str(mug.extra["skus"])
    assert mug.extra["price_min"] == 16.0
    # every row of a product is folded into one document; the draft product is not for sale
    assert len(docs) == 18
    assert all(d.text.count("Product:") == 1 for d in docs)


def test_woocommerce_csv_variations_join_their_parent() -> None:
    docs = load_file(FIXTURES / "woocommerce_products.csv", "woo.csv", LoadOptions(currency="EUR"))
    titles = {d.title: d for d in docs}
    assert set(titles) == {"Linen Tee", "Enamel Camp Mug"}  # unpublished product left out
    tee = titles["Linen Tee"].text
    assert "SKU WOO-TEE-S" in tee
    assert "price 29.00 EUR" in tee
    assert "price 24.00 EUR (was 29.00 EUR)" in tee  # on sale
    assert "Size: M" in tee


def test_json_catalog_in_shopify_shape() -> None:
    [doc] = load_file(FIXTURES / "shopify_products.json", "products.json")
    assert doc.title == "IPod Nano - 8GB"
    assert "IPOD2008RED" in doc.text
    assert "was 249.00 USD" in doc.text
    assert doc.extra["vendor"] == "Apple"


@pytest.mark.parametrize(
    ("name", "content", "error", "match"),
    [
        ("empty.md", b"", UnreadableFile, "empty"),
        ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00", UnreadableFile, "binary"),
        ("sheet.xlsx", b"PK\x03\x04", UnsupportedFile, "unsupported"),
        ("bad.json", b"{not json", UnreadableFile, "invalid JSON"),
        ("orders.csv", b"order,total\n1,2\n", UnsupportedFile, "neither a Shopify"),
        ("blank.md", b"---\ntitle: x\n---\n\n   \n", UnreadableFile, "no text"),
    ],
)
def test_bad_files_raise_clear_errors(
    tmp_path: Path, name: str, content: bytes, error: type[Exception], match: str
) -> None:
    f = tmp_path / name
    f.write_bytes(content)
    with pytest.raises(error, match=match) as info:
        load_file(f, name)
    assert name in str(info.value)


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "huge.txt"
    f.write_text("x" * 5000)
    with pytest.raises(UnreadableFile, match="over the"):
        load_file(f, "huge.txt", LoadOptions(max_bytes=1000))
