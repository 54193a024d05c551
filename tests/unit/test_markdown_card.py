"""Model cards rendered from Markdown: no script, no raw HTML, only safe links, no images."""

from __future__ import annotations

import pytest

from modelregistry_server.web.ui.markdown import card_renderer, render_card, safe_link


def test_script_tag_is_escaped_text() -> None:
    html = render_card('Hello\n\n<script>alert("x")</script>\n')
    assert "<script" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


@pytest.mark.parametrize(
    "raw",
    [
        "<img src=x onerror=alert(1)>",
        '<a href="javascript:alert(1)">x</a>',
        "<iframe src=//evil.example></iframe>",
        "<div style='position:fixed'>x</div>",
        "text <b onmouseover=alert(1)>bold</b> inline",
    ],
)
def test_raw_html_is_escaped(raw: str) -> None:
    html = render_card(raw)
    assert "<img" not in html
    assert "<iframe" not in html
    assert "<div" not in html
    assert "<b " not in html
    assert '<a href="javascript' not in html
    assert "&lt;" in html


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "vbscript:msgbox(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "data:image/png;base64,AAAA",
        "file:///etc/passwd",
    ],
)
def test_dangerous_links_are_dropped(url: str) -> None:
    for text in (f"[click]({url})", f"<{url}>", f"[click][r]\n\n[r]: {url}"):
        html = render_card(text)
        assert "<a " not in html, text
        assert 'href="' not in html


@pytest.mark.parametrize(
    "url",
    ["https://example.com/a?b=1", "http://x.test", "mailto:ml@example.com", "../docs", "#top"],
)
def test_safe_links_are_kept_with_nofollow_noopener(url: str) -> None:
    html = render_card(f"[here]({url})")
    assert f'href="{url.replace("&", "&amp;")}"' in html
    assert 'rel="nofollow noopener"' in html


def test_a_tab_inside_a_scheme_does_not_make_it_relative() -> None:
    # Browsers drop tabs from URLs; markdown-it's normalisation escapes them first.
    html = render_card("[x](<java\tscript:alert(1)>)")
    assert "javascript:" not in html.replace("\t", "")
    assert safe_link("java%09script:alert(1)")  # relative after encoding: harmless path


def test_images_become_links_and_are_not_loaded() -> None:
    html = render_card("![the *ROC* curve](/static/roc.png) ![x](https://cdn.example/x.png)")
    assert "<img" not in html
    assert '<a href="/static/roc.png" rel="nofollow noopener" class="image-link">' in html
    assert "Image: the ROC curve" in html
    assert render_card("![x](data:image/png;base64,AA)").count("<a") == 0


def test_tables_are_rendered() -> None:
    html = render_card("| split | rows |\n|---|---:|\n| train | 1,200 |\n")
    assert "<table>" in html
    assert "<th>split</th>" in html
    assert "<td>train</td>" in html
    assert ">1,200</td>" in html


def test_headings_move_below_the_page_heading() -> None:
    assert render_card("# Title\n\n## Use").startswith("<h3>Title</h3>\n<h4>Use</h4>")
    assert card_renderer(1).render("# T") == "<h2>T</h2>\n"
    assert render_card("###### deep") == "<h6>deep</h6>\n"


def test_link_text_is_escaped() -> None:
    html = render_card('[<b>"x"</b>](https://e.test "t<i>")')
    assert "<b>" not in html
    assert "<i>" not in html
