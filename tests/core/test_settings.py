"""Settings from the environment: runnable defaults, clear refusals, stable secrets.

Each test executes `pipetower/config/settings.py` afresh with the environment
it describes: in this process through runpy where only the outcome matters,
in a new process where the point is a start or a restart.
"""

from __future__ import annotations

import hashlib
import json
import re
import runpy
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import pipetower.config.settings
from pipetower.config.env import ConfigurationError, new_master_key
from tests.core._ops import CONFIG_VARIABLES, embedded_env, pipetower_argv, run_pipetower

SETTINGS_FILE = pipetower.config.settings.__file__
PRODUCTION_MISSING = (
    "Production mode needs these secrets in the environment: SECRET_KEY, PIPETOWER_MASTER_KEYS. "
    "Generate master keys with `pipetower keygen`."
)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """Run the settings module with exactly these variables (plus a fresh data directory)."""
    for name in CONFIG_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIPETOWER_DATA_DIR", str(tmp_path / "data"))

    def load(**variables: str) -> dict[str, Any]:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(SETTINGS_FILE, run_name="settings_under_test")

    return load


# --- production mode ---------------------------------------------------------------


@pytest.mark.embedded_only
def test_production_mode_without_secrets_refuses_to_start(tmp_path: Path) -> None:
    env = embedded_env(tmp_path, PIPETOWER_ENV="production")

    result = subprocess.run(
        [*pipetower_argv()[:1], "-c", "import pipetower.config.settings"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert f"ConfigurationError: {PRODUCTION_MISSING}" in result.stderr
    assert not (tmp_path / "secrets.json").exists()  # nothing invented in production


@pytest.mark.embedded_only
def test_the_pipetower_command_reports_a_configuration_error_in_one_line(tmp_path: Path) -> None:
    result = run_pipetower("check", env=embedded_env(tmp_path, PIPETOWER_ENV="production"))

    assert result.returncode == 2
    assert result.stderr == f"pipetower: {PRODUCTION_MISSING}\n"


def test_production_mode_names_only_the_secret_that_is_missing(
    environment: Callable[..., dict[str, Any]],
) -> None:
    with pytest.raises(ConfigurationError, match=r"environment: PIPETOWER_MASTER_KEYS\."):
        environment(PIPETOWER_ENV="production", SECRET_KEY="x" * 50)


def test_production_mode_with_its_secrets_enforces_https(
    environment: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    key = new_master_key()

    loaded = environment(PIPETOWER_ENV="production", SECRET_KEY="s" * 50, PIPETOWER_MASTER_KEYS=key)

    assert loaded["PRODUCTION"] is True
    assert loaded["MASTER_KEYS"] == [key]
    assert loaded["SECURE_SSL_REDIRECT"] is True
    assert loaded["SECURE_HSTS_SECONDS"] == 31_536_000
    assert loaded["SESSION_COOKIE_SECURE"] and loaded["CSRF_COOKIE_SECURE"]
    assert not (tmp_path / "data" / "secrets.json").exists()


def test_production_https_settings_can_be_tuned_for_a_proxy(
    environment: Callable[..., dict[str, Any]],
) -> None:
    loaded = environment(
        PIPETOWER_ENV="production",
        SECRET_KEY="s" * 50,
        PIPETOWER_MASTER_KEYS=new_master_key(),
        PIPETOWER_SSL_REDIRECT="false",
        PIPETOWER_HSTS_SECONDS="3600",
    )

    assert loaded["SECURE_SSL_REDIRECT"] is False
    assert loaded["SECURE_HSTS_SECONDS"] == 3600


# --- generated secrets (embedded default) ------------------------------------------

SHOW_SECRETS = (
    "import hashlib, django; from django.conf import settings; "
    "print(hashlib.sha256((settings.SECRET_KEY + ','.join(settings.MASTER_KEYS)).encode())"
    ".hexdigest())"
)


def start_and_fingerprint_secrets(data: Path) -> subprocess.Popen[str]:
    """A process that loads the settings and prints a digest of the secrets it got."""
    env = embedded_env(data, DJANGO_SETTINGS_MODULE="pipetower.config.settings")
    return subprocess.Popen(
        [*pipetower_argv()[:1], "-c", SHOW_SECRETS],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def fingerprint(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return out.strip()


@pytest.mark.embedded_only
def test_generated_secrets_are_private_and_survive_a_restart(tmp_path: Path) -> None:
    first = fingerprint(start_and_fingerprint_secrets(tmp_path))
    secrets_file = tmp_path / "secrets.json"
    content = secrets_file.read_bytes()

    again = fingerprint(start_and_fingerprint_secrets(tmp_path))

    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert again == first
    assert secrets_file.read_bytes() == content
    stored = json.loads(content)
    assert set(stored) == {"SECRET_KEY", "PIPETOWER_MASTER_KEYS"}
    digest = hashlib.sha256(
        (stored["SECRET_KEY"] + stored["PIPETOWER_MASTER_KEYS"]).encode()
    ).hexdigest()
    assert digest == first


@pytest.mark.embedded_only
def test_processes_starting_together_agree_on_one_set_of_secrets(tmp_path: Path) -> None:
    processes = [start_and_fingerprint_secrets(tmp_path) for _ in range(3)]

    assert len({fingerprint(p) for p in processes}) == 1


def test_environment_secrets_win_over_the_generated_file(
    environment: Callable[..., dict[str, Any]],
) -> None:
    key = new_master_key()

    loaded = environment(SECRET_KEY="from-the-environment" * 3, PIPETOWER_MASTER_KEYS=key)

    assert loaded["SECRET_KEY"] == "from-the-environment" * 3
    assert loaded["MASTER_KEYS"] == [key]


def test_a_damaged_secrets_file_stops_start_up_with_advice(
    environment: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "secrets.json").write_text("{not json")

    with pytest.raises(ConfigurationError, match="Restore the file from a backup"):
        environment()


# --- values that cannot work ----------------------------------------------------


@pytest.mark.embedded_only
@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"PIPETOWER_SIGNUP": "sometimes"},
            "PIPETOWER_SIGNUP must be open, invite or closed, not 'sometimes'.",
        ),
        (
            {"PIPETOWER_EMAIL": "pigeon"},
            "PIPETOWER_EMAIL must be console, smtp or mailgun, not 'pigeon'.",
        ),
        ({"PIPETOWER_EMAIL": "mailgun"}, "PIPETOWER_EMAIL=mailgun needs MAILGUN_API_KEY."),
        (
            {"PIPETOWER_ENV": "staging"},
            "PIPETOWER_ENV must be 'development' or 'production', not 'staging'.",
        ),
        ({"PIPETOWER_DEBUG": "maybe"}, "PIPETOWER_DEBUG must be true or false, not 'maybe'."),
        ({"PIPETOWER_PORT": "eighty"}, "PIPETOWER_PORT must be a whole number, not 'eighty'."),
    ],
)
def test_a_value_that_cannot_work_is_named_with_what_would(
    environment: Callable[..., dict[str, Any]], variables: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        environment(**variables)

    assert str(raised.value) == message


def test_signup_and_email_values_are_read_case_insensitively(
    environment: Callable[..., dict[str, Any]],
) -> None:
    loaded = environment(PIPETOWER_SIGNUP="Invite", PIPETOWER_EMAIL="SMTP", EMAIL_HOST="mx")

    assert loaded["SIGNUP_MODE"] == "invite"
    assert loaded["EMAIL_MODE"] == "smtp"
    assert loaded["MAILERS"]["default"]["OPTIONS"]["host"] == "mx"


@pytest.mark.embedded_only
def test_a_bad_signup_mode_stops_the_command_with_one_line(tmp_path: Path) -> None:
    result = run_pipetower("check", env=embedded_env(tmp_path, PIPETOWER_SIGNUP="sometimes"))

    assert result.returncode == 2
    assert result.stderr == (
        "pipetower: PIPETOWER_SIGNUP must be open, invite or closed, not 'sometimes'.\n"
    )


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"PIPETOWER_LOG_LEVEL": "LOUD"}, "(Unknown level: 'LOUD')"),
        ({"DATABASE_URL": "mongo://db/pipetower"}, "Scheme 'mongo://' is unknown."),
    ],
)
def test_values_that_django_rejects_are_reported_without_a_traceback(
    tmp_path: Path, variables: dict[str, str], message: str
) -> None:
    result = run_pipetower("check", env=embedded_env(tmp_path, **variables))

    assert result.returncode == 2
    assert result.stderr.startswith("pipetower: the configuration is not valid: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr


# --- the embedded database ---------------------------------------------------------


@pytest.mark.embedded_only
def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    result = run_pipetower(
        "manage",
        "shell",
        "--no-imports",
        "--command",
        "from django.db import connection\n"
        "with connection.cursor() as c:\n"
        "    c.execute('PRAGMA journal_mode'); mode = c.fetchone()[0]\n"
        "    c.execute('PRAGMA busy_timeout'); timeout = c.fetchone()[0]\n"
        "print(connection.vendor, mode, timeout)",
        env=embedded_env(tmp_path),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["sqlite", "wal", "20000"]


# --- the README's configuration table ------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def variables_read_by_pipetower() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "pipetower").rglob("*.py"):
        text = path.read_text()
        names |= set(re.findall(r'env_(?:str|bool|int|list)\(\s*"([A-Z0-9_]+)"', text))
        names |= set(re.findall(r'os\.environ(?:\.get\(|\[)\s*"([A-Z0-9_]+)"', text))
    return names - {"DJANGO_SETTINGS_MODULE"}


def variables_in_the_readme() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z0-9_]+)` \|", section, flags=re.MULTILINE))


def test_the_readme_documents_every_environment_variable_and_no_other() -> None:
    read = variables_read_by_pipetower()
    documented = variables_in_the_readme()

    assert "PIPETOWER_MASTER_KEYS" in read and "DATABASE_URL" in read  # the scan works
    assert sorted(read - documented) == [], "read but missing from the README's table"
    assert sorted(documented - read) == [], "in the README's table but read nowhere"
