"""Model cards: Markdown to HTML that is safe to put in a page.

A card is text anyone who may push a version wrote, shown to everyone who may read it, so it
is rendered as untrusted input: CommonMark (plus tables) with raw HTML off (a ``<script>`` in
a card is shown as text), links only to ``http``, ``https``, ``mailto`` or a relative address
(no ``javascript:``, ``data:``, ``vbscript:``, ``file:``), each with ``rel="nofollow
noopener"``, and images shown as links rather than loaded (a card must not make the reader's
browser fetch from another site; the CSP would block it anyway). Headings move down a level
or more so a card's ``# Title`` does not compete with the page's own ``<h1>``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup, escape

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
ALLOWED_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "nofollow noopener"


def safe_link(url: str) -> bool:
    """Whether a card may link to ``url``: http(s), mailto, or a relative address.

    markdown-it hands over the normalised URL, in which control characters and spaces are
    percent-encoded, so ``java\\tscript:`` cannot pass as a relative address that a browser
    would later read as a scheme.
    """
    text = url.strip()
    scheme = _SCHEME.match(text)
    if scheme is None:
        return not text.startswith("\\")
    return scheme.group(1).lower() in ALLOWED_SCHEMES


def _link_open(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    tokens[idx].attrSet("rel", LINK_REL)
    return renderer.renderToken(tokens, idx, options, env)


def _image(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    """An image becomes a link to it, labelled with its alt text."""
    token = tokens[idx]
    source = str(token.attrGet("src") or "")
    label = renderer.renderInlineAsText(token.children or [], options, env) or source
    return (
        f'<a href="{escape(source)}" rel="{LINK_REL}" class="image-link">Image: {escape(label)}</a>'
    )


def _heading(offset: int) -> Any:
    def shift(
        renderer: RendererHTML,
        tokens: Sequence[Token],
        idx: int,
        options: OptionsDict,
        env: EnvType,
    ) -> str:
        token = tokens[idx]
        level = min(int(token.tag[1:]) + offset, 6)
        return f"<h{level}>" if token.nesting == 1 else f"</h{level}>\n"

    return shift


def card_renderer(heading_offset: int = 2) -> MarkdownIt:
    """A CommonMark renderer with tables and the rules above; headings move down by
    ``heading_offset`` levels (at most to ``<h6>``)."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    md.validateLink = safe_link  # type: ignore[method-assign]
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("image", _image)
    md.add_render_rule("heading_open", _heading(heading_offset))
    md.add_render_rule("heading_close", _heading(heading_offset))
    return md


_DEFAULT = card_renderer()


def render_card(text: str) -> Markup:
    """``text`` (Markdown) as HTML safe to insert in a page as it is."""
    return Markup(_DEFAULT.render(text))  # noqa: S704 - sanitised by the rules above
