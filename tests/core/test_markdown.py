"""The small Markdown renderer used for the privacy policy: the few blocks and
inline marks it knows, and no way for stored markup to become markup."""

from __future__ import annotations

import pytest

from pipetower.core.markdown import render_markdown


def test_headings_sit_under_the_pages_own_title() -> None:
    assert render_markdown("# Policy\n## Data\n### Logs") == (
        "<h2>Policy</h2>\n<h3>Data</h3>\n<h4>Logs</h4>"
    )
    assert render_markdown("# Policy", heading_offset=0) == "<h1>Policy</h1>"


def test_paragraphs_keep_their_line_breaks_and_blank_lines_split_them() -> None:
    assert render_markdown("one\ntwo\r\n\r\nthree") == "<p>one<br>two</p>\n<p>three</p>"


def test_bulleted_and_numbered_lists() -> None:
    html = render_markdown("Intro\n- a\n* b\n  continued\n\n1. first\n2) second")
    assert html == (
        "<p>Intro</p>\n<ul><li>a</li><li>b continued</li></ul>\n"
        "<ol><li>first</li><li>second</li></ol>"
    )


def test_emphasis_code_and_links() -> None:
    html = render_markdown(
        "**bold** and *it* and `x < y` and [docs](https://example.com/a?b=1&c=2)"
    )
    assert html == (
        "<p><strong>bold</strong> and <em>it</em> and <code>x &lt; y</code> and "
        '<a href="https://example.com/a?b=1&amp;c=2" rel="nofollow noopener">docs</a></p>'
    )


def test_marks_inside_code_stay_literal() -> None:
    assert render_markdown("`**not bold**`") == "<p><code>**not bold**</code></p>"


@pytest.mark.parametrize(
    "target",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,x",
        "//evil.example/",
        "vbscript:x",
        "java&#10;script:alert(1)",
    ],
)
def test_a_link_to_anything_but_the_web_mail_or_this_site_stays_text(target: str) -> None:
    html = render_markdown(f"[click]({target})")
    assert "<a" not in html and "click" in html


@pytest.mark.parametrize(
    "target", ["https://e.example/", "http://e.example/", "mailto:a@b.c", "/privacy/", "#rights"]
)
def test_safe_link_targets_become_links(target: str) -> None:
    assert f'<a href="{target}"' in render_markdown(f"[here]({target})")


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "# <b onclick=x>title</b>",
        "- <iframe src=//evil>",
        '[<b onclick="x">t</b>](https://e.example/)',
        '[t](https://e.example/"onmouseover="alert(1))',
        "**<svg onload=alert(1)>**",
    ],
)
def test_stored_html_is_always_shown_as_text(source: str) -> None:
    html = render_markdown(source)
    for tag in ("<script", "<img", "<b ", "<iframe", "<svg", 'onmouseover="'):
        assert tag not in html
    assert "&lt;" in html or "&quot;" in html


def test_an_empty_text_renders_nothing() -> None:
    assert render_markdown("") == "" and render_markdown("\n \n") == ""


def test_nul_characters_in_the_source_are_dropped_not_taken_for_placeholders() -> None:
    # The renderer marks kept fragments with NUL-delimited numbers internally.
    html = render_markdown("a\x00b `x` \x000\x00 [l](/y)")
    assert "\x00" not in html
    assert html == '<p>ab <code>x</code> 0 <a href="/y" rel="nofollow noopener">l</a></p>'
