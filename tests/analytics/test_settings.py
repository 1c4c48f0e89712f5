"""PIPETOWER_ANALYTICS_SNIPPET_URL: a script's full address, https in production."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest

import pipetower.config.settings
from pipetower.config.env import ConfigurationError

SETTINGS_FILE = pipetower.config.settings.__file__


def load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **variables: str) -> dict[str, Any]:
    monkeypatch.setenv("PIPETOWER_DATA_DIR", str(tmp_path / "data"))
    for name in ("PIPETOWER_ENV", "PIPETOWER_ANALYTICS_SNIPPET_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(SETTINGS_FILE, run_name="settings_under_test")


def test_unset_means_no_script(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert load(monkeypatch, tmp_path)["ANALYTICS_SNIPPET_URL"] == ""


def test_a_full_address_is_taken(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = "https://stats.example.com/js/script.js"

    loaded = load(monkeypatch, tmp_path, PIPETOWER_ANALYTICS_SNIPPET_URL=url)

    assert loaded["ANALYTICS_SNIPPET_URL"] == url
    assert loaded["SECURE_CSP"]["script-src"] == ["'self'"]  # widened per consenting page only


@pytest.mark.parametrize("value", ["stats.example.com/script.js", "https://", "javascript:x"])
def test_an_address_that_is_not_a_script_url_stops_start_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load(monkeypatch, tmp_path, PIPETOWER_ANALYTICS_SNIPPET_URL=value)

    assert str(raised.value) == (
        "PIPETOWER_ANALYTICS_SNIPPET_URL must be a full http(s) address of a script, "
        f"not {value!r}."
    )


def test_production_needs_https(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="must use https in production"):
        load(
            monkeypatch,
            tmp_path,
            PIPETOWER_ENV="production",
            SECRET_KEY="x" * 50,
            PIPETOWER_MASTER_KEYS="k",
            PIPETOWER_ANALYTICS_SNIPPET_URL="http://stats.example.com/s.js",
        )
