"""The live view's ANSI renderer (actions/static/actions/run.js) in a real Chromium:
escapes are skipped or shown, and the text around them is never dropped
(issue 9, finding 10: an OSC 8 link ended by `ESC \\` hid everything after it)."""

from __future__ import annotations

import pytest

from pipetower.actions import services
from tests.actions.conftest import pinned_server
from tests.actions.test_run_page_browser import signed_in_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ESC = "\x1b"
ST = ESC + "\\"
BEL = "\x07"
LONG = "u" * 5000

# (name, the chunks as they arrive, what the terminal must show)
CASES = [
    (
        "osc8 ended by ST",
        [f"a {ESC}]8;;https://example.com{ST}link{ESC}]8;;{ST} after\n"],
        "a link after\n",
    ),
    (
        "osc8 ended by BEL",
        [f"a {ESC}]8;;https://example.com{BEL}link{ESC}]8;;{BEL} after\n"],
        "a link after\n",
    ),
    ("window title", [f"{ESC}]0;my title{ST}text\n"], "text\n"),
    (
        "osc8 split across chunks",
        [f"a {ESC}]8;;https://exa", f"mple.com{ST}link{ESC}]8;;{ST} after\n"],
        "a link after\n",
    ),
    ("ST split between ESC and backslash", [f"x {ESC}]0;t{ESC}", "\\y\n"], "x y\n"),
    (
        "osc never ended before a newline",
        [f"a {ESC}]8;;https://example.com\nafter\n"],
        "a 8;;https://example.com\nafter\n",
    ),
    ("osc never ended at all", [f"before {ESC}]0;never ended"], "before ]0;never ended"),
    ("osc longer than is waited for", [f"x {ESC}]8;;{LONG} after"], f"x 8;;{LONG} after"),
    ("private CSI", [f"{ESC}[?25lcursor{ESC}[?25h after\n"], "cursor after\n"),
    ("CSI with > and intermediates", [f"{ESC}[>4;2mkeys{ESC}[0 q after\n"], "keys after\n"),
    ("charset designations", [f"{ESC}(Bplain{ESC})0 after\n"], "plain after\n"),
    ("DCS string", [f"{ESC}Pq#0;2;0;0;0{ST}after\n"], "after\n"),
    ("truecolour with colons", [f"{ESC}[38:2:255:0:0mred{ESC}[0m after\n"], "red after\n"),
    ("CSI split across chunks", [f"a {ESC}[3", f"1mred{ESC}[0m b\n"], "a red b\n"),
]


def test_escapes_never_hide_the_text_around_them(
    new_context, live_server, team, user, make_action, tasks_queued
):
    servers = [pinned_server(team, f"host-{i}", port=9) for i in range(len(CASES))]
    run = services.run_start(action=make_action(), actor=user, server_ids=[s.pk for s in servers])
    targets = {t.server_id: t for t in run.targets.all()}
    expected = {}
    for server, (name, chunks, shown) in zip(servers, CASES, strict=True):
        target = targets[server.pk]
        services.run_target_claim(target_id=target.pk, worker="w")
        services.run_target_running(target_id=target.pk)
        services.output_chunks_store(
            target_id=target.pk, chunks=[("stdout", chunk) for chunk in chunks]
        )
        expected[name] = (target.pk, shown)

    page = signed_in_page(new_context, live_server, user)
    ids = ",".join(str(tid) for tid, _ in expected.values())
    page.goto(f"/teams/{team.slug}/runs/{run.pk}/#open={ids}")
    shown_text = {}
    for name, (tid, want) in expected.items():
        terminal = page.locator(f"#output-{tid} pre")
        terminal.locator(".chunk").last.wait_for()
        shown_text[name] = terminal.evaluate("node => node.textContent")
    assert shown_text == {name: want for name, (_, want) in expected.items()}

    red = page.locator(f"#output-{expected['CSI split across chunks'][0]} pre span.ansi-fg-31")
    assert red.inner_text() == "red"
