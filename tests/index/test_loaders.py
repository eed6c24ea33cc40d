"""Loaders on real files of every supported type, and on the bad inputs users actually have."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pytest
from conftest import DOC_DEFEAT, DOC_RETAKE, SAMPLE_DIR
from fpdf import FPDF

from index.errors import DocumentError, UnsupportedFileType
from index.loaders import load_file, load_paths
from index.models import Document

FLOOD = "The river flooded the valley in March. Farmers moved their cattle to higher ground."
BRIDGE = "Engineers inspected the old stone bridge on the second page."

ARTICLE_HTML = """<!DOCTYPE html>
<html><head><title>River floods valley | Daily Planet</title>
<meta property="article:published_time" content="2023-05-17T10:00:00Z"></head>
<body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/world">World</a></li>
<li><a href="/subscribe">Subscribe to our newsletter</a></li></ul></nav>
<div class="cookie-banner">We use cookies to improve your experience.</div>
<main><article>
<h1>River floods valley</h1>
<p>The river flooded the valley in March after three days of heavy rain, the mayor said on Tuesday.</p>
<p>Farmers moved their cattle to higher ground while volunteers filled sandbags near the old stone bridge.</p>
<p>Engineers expect the water to recede by the end of the week, but warned that the embankment needs repair.</p>
</article></main>
<footer><p>Copyright 2024 Daily Planet. All rights reserved. Privacy policy.</p></footer>
</body></html>
"""


def make_pdf(path: Path, pages: list[str], *, title: str | None = None) -> Path:
    """A real PDF with a text layer, one page per string."""
    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 10, text)
    path.write_bytes(bytes(pdf.output()))
    return path


def make_image_only_pdf(path: Path) -> Path:
    """A PDF whose only page is a drawing: no text layer (like a scan)."""
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 60, style="F")
    path.write_bytes(bytes(pdf.output()))
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def only(docs: list[Document]) -> Document:
    assert len(docs) == 1
    return docs[0]


# good inputs ----------------------------------------------------------------------------------
def test_txt_gets_id_from_name_and_title_from_first_line(tmp_path: Path) -> None:
    path = write(tmp_path / "flood-report.txt", "Valley flood report\n\n" + FLOOD + "\n")
    doc = only(load_file(path))
    assert doc.id == "flood-report"
    assert doc.title == "Valley flood report"
    assert FLOOD in doc.text
    assert doc.path == str(path)
    assert doc.published_at is None and doc.url is None


def test_markdown_front_matter_sets_metadata_and_is_not_indexed(tmp_path: Path) -> None:
    path = write(
        tmp_path / "notes.md",
        "---\n"
        "id: flood-2023\n"
        'title: "Flood: what happened"\n'
        "source: Valley Gazette\n"
        "url: https://example.org/flood\n"
        "published_at: 2023-03-14\n"
        "---\n"
        "# A heading that is not the title\n\n" + FLOOD + "\n",
    )
    doc = only(load_file(path))
    assert doc.id == "flood-2023"
    assert doc.title == "Flood: what happened"
    assert doc.source == "Valley Gazette"
    assert doc.url == "https://example.org/flood"
    assert doc.published_at == date(2023, 3, 14)
    assert "published_at" not in doc.text and "---" not in doc.text
    assert doc.text.startswith("# A heading")


def test_markdown_front_matter_with_windows_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "crlf.md"
    front = b"---\r\ntitle: Written on Windows\r\npublished_at: 2020-01-02\r\n---\r\n"
    path.write_bytes(front + FLOOD.encode() + b"\r\n")
    doc = only(load_file(path))
    assert doc.title == "Written on Windows"
    assert doc.published_at == date(2020, 1, 2)
    assert "title:" not in doc.text and "\r" not in doc.text


def test_markdown_title_from_heading_without_front_matter(tmp_path: Path) -> None:
    doc = only(load_file(write(tmp_path / "plain.md", "Intro line\n\n# Valley flood\n\n" + FLOOD)))
    assert doc.title == "Valley flood"


def test_html_keeps_the_article_and_drops_navigation(tmp_path: Path) -> None:
    doc = only(load_file(write(tmp_path / "article.html", ARTICLE_HTML)))
    assert "three days of heavy rain" in doc.text
    assert "filled sandbags near the old stone bridge" in doc.text
    assert "embankment needs repair" in doc.text
    for boilerplate in ("Subscribe to our newsletter", "Home", "cookies", "All rights reserved", "Privacy policy"):
        assert boilerplate not in doc.text
    assert doc.title == "River floods valley"
    assert doc.published_at == date(2023, 5, 17)  # from the markup


def test_html_date_is_not_guessed_from_a_copyright_line(tmp_path: Path) -> None:
    html = ARTICLE_HTML.replace('<meta property="article:published_time" content="2023-05-17T10:00:00Z">', "")
    doc = only(load_file(write(tmp_path / "undated.htm", html)))
    assert "three days of heavy rain" in doc.text
    assert doc.published_at is None  # not 2024-01-01 from "Copyright 2024"


def test_pdf_text_layer_of_every_page(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "report.pdf", [FLOOD, BRIDGE], title="Quarterly flood report")
    doc = only(load_file(path))
    assert doc.id == "report"
    assert doc.title == "Quarterly flood report"
    assert "Farmers moved their cattle to higher ground." in doc.text
    assert BRIDGE in doc.text
    assert doc.text.index("Farmers") < doc.text.index("Engineers")


def test_jsonl_records_with_metadata(tmp_path: Path) -> None:
    records = [
        {"id": "r1", "title": "Flood", "text": FLOOD, "url": "https://example.org/1", "source": "Gazette",
         "published_at": "2023-03-14T08:00:00Z"},
        {"_id": 42, "title": "Bridge", "text": BRIDGE},
    ]
    path = write(tmp_path / "records.jsonl", "\n".join(json.dumps(r) for r in records) + "\n\n")
    docs = load_file(path)
    assert [d.id for d in docs] == ["r1", "42"]
    assert docs[0].url == "https://example.org/1" and docs[0].source == "Gazette"
    assert docs[0].published_at == date(2023, 3, 14)
    assert docs[1].title == "Bridge" and docs[1].text == BRIDGE
    assert docs[0].path == f"{path}:1" and docs[1].path == f"{path}:2"


def test_sidecar_metadata_wins_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "---\ntitle: Front matter title\nsource: Front\n---\nFirst line title\n" + FLOOD)
    write(
        tmp_path / "a.meta.json",
        json.dumps({"id": "valley-flood", "title": "Sidecar title", "url": "https://example.org/a",
                    "published_at": "2017-11-19", "note": "ignored"}),
    )
    doc = only(load_file(path))
    assert doc.id == "valley-flood"
    assert doc.title == "Sidecar title"
    assert doc.source == "Front"  # the sidecar does not name one, so front matter still counts
    assert doc.url == "https://example.org/a"
    assert doc.published_at == date(2017, 11, 19)


def test_sample_corpus_metadata_comes_from_sidecars() -> None:
    result = load_paths([SAMPLE_DIR])
    assert result.failures == []
    docs = {d.id: d for d in result.documents}
    assert set(docs) == {DOC_RETAKE, DOC_DEFEAT}
    assert docs[DOC_DEFEAT].source == "Global News"
    assert docs[DOC_DEFEAT].published_at == date(2017, 11, 19)
    assert docs[DOC_DEFEAT].url == "https://globalnews.ca/news/3869084/syria-isis-defeated-last-stronghold/"
    assert docs[DOC_RETAKE].published_at is None and docs[DOC_RETAKE].url is None
    assert docs[DOC_RETAKE].title.startswith("The ISIS strikes back")


def test_directory_walk_is_recursive_and_skips_hidden_sidecars_and_other_types(tmp_path: Path) -> None:
    write(tmp_path / "top.txt", FLOOD)
    write(tmp_path / "top.meta.json", json.dumps({"title": "Top"}))
    write(tmp_path / "nested" / "deeper" / "inner.md", "# Inner\n\n" + BRIDGE)
    make_pdf(tmp_path / "nested" / "scan.pdf", [BRIDGE])
    write(tmp_path / ".git" / "notes.txt", "hidden: must not be indexed")
    write(tmp_path / "nested" / ".draft.txt", "hidden file: must not be indexed")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    result = load_paths([tmp_path])
    assert result.failures == []
    assert sorted(d.id for d in result.documents) == ["inner", "scan", "top"]
    assert {d.id: d.title for d in result.documents}["top"] == "Top"


# bad inputs -----------------------------------------------------------------------------------
def test_each_bad_file_is_reported_by_name_while_the_others_load(tmp_path: Path) -> None:
    write(tmp_path / "good.txt", FLOOD)
    make_pdf(tmp_path / "manual.pdf", [BRIDGE])
    (tmp_path / "src").mkdir()
    real = make_pdf(tmp_path / "src" / "real.pdf", [FLOOD, BRIDGE])
    scan = make_image_only_pdf(tmp_path / "src" / "scan.pdf")
    bad = {
        "broken.pdf": real.read_bytes()[: real.stat().st_size // 2],
        "scan.pdf": scan.read_bytes(),
        "binary.txt": bytes(range(256)) * 4,
        "empty.md": b"",
        "blank.txt": b"   \n\n\t\n",
        "latin1.txt": "Caf\u00e9 cr\u00e8me in M\u00fcnchen".encode("latin-1"),
        "script-only.html": b"<html><head><script>var a = 1;</script></head><body><div></div></body></html>",
    }
    batch = tmp_path / "batch"
    batch.mkdir()
    for name, data in bad.items():
        (batch / name).write_bytes(data)

    result = load_paths([tmp_path / "good.txt", batch, tmp_path / "missing.txt", tmp_path / "manual.pdf"])

    assert sorted(d.id for d in result.documents) == ["good", "manual"]
    reasons = {Path(f.source).name: f.reason for f in result.failures}
    assert set(reasons) == set(bad) | {"missing.txt"}
    assert "malformed PDF" in reasons["broken.pdf"]
    assert "no text layer" in reasons["scan.pdf"]
    assert "binary" in reasons["binary.txt"]
    assert "empty" in reasons["empty.md"]
    assert "empty" in reasons["blank.txt"]
    assert "not UTF-8" in reasons["latin1.txt"]
    assert "no main text" in reasons["script-only.html"]
    assert "no such file" in reasons["missing.txt"]
    for failure in result.failures:
        assert failure.source.startswith(str(tmp_path))  # the full path, so the user can find it


def test_a_malformed_jsonl_line_is_reported_and_the_other_records_load(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "r1", "text": FLOOD}),
        '{"id": "r2", "text": "unterminated',
        json.dumps({"id": "r3", "title": "no text"}),
        json.dumps(["not", "an", "object"]),
        json.dumps({"id": "r5", "text": BRIDGE, "published_at": "last Tuesday"}),
        json.dumps({"id": "r6", "text": BRIDGE}),
    ]
    path = write(tmp_path / "records.jsonl", "\n".join(lines) + "\n")
    result = load_paths([path])
    assert [d.id for d in result.documents] == ["r1", "r6"]
    reasons = {f.source: f.reason for f in result.failures}
    assert set(reasons) == {f"{path}:2", f"{path}:3", f"{path}:4", f"{path}:5"}
    assert "malformed JSON" in reasons[f"{path}:2"]
    assert "text" in reasons[f"{path}:3"]
    assert "not a JSON object" in reasons[f"{path}:4"]
    assert "not an ISO date" in reasons[f"{path}:5"]


def test_load_file_alone_rejects_a_jsonl_file_with_a_bad_record(tmp_path: Path) -> None:
    path = write(tmp_path / "records.jsonl", json.dumps({"id": "r1", "text": FLOOD}) + "\n{oops\n")
    with pytest.raises(DocumentError) as err:
        load_file(path)
    assert err.value.source == f"{path}:2"


def test_an_empty_jsonl_file_is_reported(tmp_path: Path) -> None:
    result = load_paths([write(tmp_path / "none.jsonl", "\n\n")])
    assert result.documents == []
    assert [(Path(f.source).name, f.reason) for f in result.failures] == [("none.jsonl", "empty: no records")]


def test_two_inputs_with_one_id_keep_the_first_and_report_the_second(tmp_path: Path) -> None:
    first = write(tmp_path / "a" / "report.txt", FLOOD)
    second = write(tmp_path / "b" / "report.md", BRIDGE)
    result = load_paths([tmp_path])
    assert [(d.id, d.text) for d in result.documents] == [("report", FLOOD)]
    assert [f.source for f in result.failures] == [str(second)]
    assert str(first) in result.failures[0].reason


def test_a_malformed_sidecar_is_reported_by_its_own_name(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", FLOOD)
    sidecar = write(tmp_path / "a.meta.json", "{not json")
    write(tmp_path / "b.txt", BRIDGE)
    result = load_paths([tmp_path])
    assert [d.id for d in result.documents] == ["b"]
    assert [f.source for f in result.failures] == [str(sidecar)]
    assert "sidecar" in result.failures[0].reason


def test_an_explicitly_named_file_of_another_type_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(os.urandom(64))
    with pytest.raises(UnsupportedFileType) as err:
        load_file(path)
    assert "unsupported file type .bin" in str(err.value)
    result = load_paths([path, write(tmp_path / "ok.txt", FLOOD)])
    assert [d.id for d in result.documents] == ["ok"]
    assert [f.source for f in result.failures] == [str(path)]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path / "secret.txt", FLOOD)
    path.chmod(0)
    try:
        result = load_paths([path])
    finally:
        path.chmod(0o644)
    assert result.documents == []
    assert "cannot read" in result.failures[0].reason


def test_derived_ids_are_kept_when_safe_and_never_collide_otherwise() -> None:
    from index.loaders import derive_doc_id

    assert derive_doc_id("flood-report") == "flood-report"
    names = ["a/b/c", "a b c", "a-b-c", "../../etc/passwd", "passwd", "ünïcødé", ".", "..", "x" * 10_000]
    ids = [derive_doc_id(n) for n in names]
    assert len(set(ids)) == len(names)
    assert all(len(i) <= 200 and i not in (".", "..") and "/" not in i for i in ids)
    assert ids == [derive_doc_id(n) for n in names]  # deterministic: re-adding a file finds its document


def test_an_explicit_id_outside_the_pattern_fails_the_record_naming_id(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    records = [{"id": "a b c", "text": "Body."}, {"id": "ok-1", "text": "Body."}]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    loaded = load_paths([path])
    assert [d.id for d in loaded.documents] == ["ok-1"]
    assert "is not a valid document id" in loaded.failures[0].reason
