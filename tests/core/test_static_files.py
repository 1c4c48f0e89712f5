"""Static files: hashed names in the pages, cached by browsers for a year, after the
`collectstatic` that `pipetower serve` runs; a real web process serves them."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core._ops import embedded_env, run_pipetower
from tests.webproc import running_web

pytestmark = pytest.mark.embedded_only

ROOT = Path(__file__).resolve().parents[2]
YEAR = 365 * 24 * 3600


@pytest.fixture
def web(tmp_path: Path) -> Iterator[str]:
    env = embedded_env(tmp_path / "data")
    for command in (("migrate", "--verbosity", "0"), ("manage", "collectstatic", "--noinput")):
        result = run_pipetower(*command, env=env, timeout=120)
        assert result.returncode == 0, result.stderr
    with running_web(env, workers=1) as base:
        yield base


def test_pages_link_hashed_static_files_that_browsers_keep_for_a_year(web: str) -> None:
    with urllib.request.urlopen(f"{web}/", timeout=10) as page:
        html = page.read().decode()
    css = re.search(r'href="(/static/pipetower/pipetower\.[0-9a-f]{12}\.css)"', html)
    assert css, "the page links the hashed stylesheet"

    with urllib.request.urlopen(f"{web}{css[1]}", timeout=10) as answer:
        cache_control = answer.headers["Cache-Control"]
        body = answer.read()
    assert b"{" in body
    assert "immutable" in cache_control
    assert int(re.search(r"max-age=(\d+)", cache_control)[1]) >= YEAR  # type: ignore[index]

    # The unhashed name still answers (old links), but is not kept for a year.
    with urllib.request.urlopen(f"{web}/static/pipetower/pipetower.css", timeout=10) as plain:
        assert "immutable" not in (plain.headers["Cache-Control"] or "")
