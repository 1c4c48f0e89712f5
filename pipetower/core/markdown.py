"""A small, safe Markdown renderer for text staff write (the privacy policy).

No Markdown library is among Pipetower's dependencies, and the policy needs
little: headings, paragraphs, lists, emphasis, inline code and links. Every
character of the source is escaped first; the only markup in the result is the
tags this module writes itself, and a link keeps its target only when it is a
web, mail or same-site address. So stored HTML never gets through, whatever
the text holds: `<script>` shows as text.
"""

from __future__ import annotations

import re
from html import unescape

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

_HEADING = re.compile(r"^(#{1,4})\s+(.+?)\s*#*\s*$")
_BULLET = re.compile(r"^\s*[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^\s*\d{1,9}[.)]\s+(.*)$")
_CODE = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)\)")
_STRONG = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_EM = re.compile(r"(?<![*\w])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![*\w])")
_SAFE_TARGET = re.compile(r"^(https?://|mailto:|/(?!/)|#)", re.IGNORECASE)


def _link_target(escaped: str) -> str | None:
    """The escaped target, if it is one a reader can follow safely."""
    plain = unescape(escaped).strip()
    if any(ord(c) < 32 for c in plain) or not _SAFE_TARGET.match(plain):
        return None  # javascript:, data:, protocol-relative and the like stay text
    return escaped


def _inline(text: str) -> str:
    """One line or paragraph: escape it, then add the few inline tags."""
    out = str(escape(text))  # a plain str from here: the tags below are added to it
    stash: list[str] = []

    def keep(html: str) -> str:
        stash.append(html)
        return f"\x00{len(stash) - 1}\x00"

    out = _CODE.sub(lambda m: keep(f"<code>{m.group(1)}</code>"), out)

    def link(m: re.Match[str]) -> str:
        target = _link_target(m.group(2))
        if target is None:
            return m.group(0)
        return keep(f'<a href="{target}" rel="nofollow noopener">{m.group(1)}</a>')

    out = _LINK.sub(link, out)
    out = _STRONG.sub(r"<strong>\1</strong>", out)
    out = _EM.sub(r"<em>\1</em>", out)
    # Links may hold code or emphasis: restore until no placeholder is left.
    while "\x00" in out:
        out = re.sub(r"\x00(\d+)\x00", lambda m: stash[int(m.group(1))], out)
    return out


def render_markdown(source: str, *, heading_offset: int = 1) -> SafeString:
    """Markdown to HTML. `# Title` becomes `<h{1 + heading_offset}>`, so a
    policy's own headings sit under the page's `<h1>`."""
    blocks: list[str] = []
    paragraph: list[str] = []
    items: list[str] = []
    list_tag = ""

    def flush() -> None:
        nonlocal list_tag
        if paragraph:
            blocks.append(f"<p>{'<br>'.join(_inline(line) for line in paragraph)}</p>")
            paragraph.clear()
        if items:
            lis = "".join(f"<li>{_inline(item)}</li>" for item in items)
            blocks.append(f"<{list_tag}>{lis}</{list_tag}>")
            items.clear()
            list_tag = ""

    # NUL marks the inline placeholders below: none may come from the source.
    source = source.replace("\x00", "")
    for raw in source.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.rstrip()
        if not line.strip():
            flush()
            continue
        if heading := _HEADING.match(line):
            flush()
            level = min(len(heading.group(1)) + heading_offset, 6)
            blocks.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
            continue
        bullet, numbered = _BULLET.match(line), _NUMBERED.match(line)
        if bullet or numbered:
            tag = "ul" if bullet else "ol"
            if paragraph or (items and tag != list_tag):
                flush()
            list_tag = tag
            items.append((bullet or numbered).group(1))  # type: ignore[union-attr]
            continue
        if items and raw[:1].isspace():
            items[-1] += " " + line.strip()  # a list item continued on the next line
            continue
        if items:
            flush()
        paragraph.append(line.strip())
    flush()
    # Every piece of the source went through `escape` above: only our own tags are markup.
    return mark_safe("\n".join(blocks))  # noqa: S308
