"""The `pipetower` command and its operator subcommands.

Most run in-process through `pipetower.cli.main` or `call_command` against the
test database; those whose point is a fresh process (configuration errors,
production mode, a password typed on a terminal) run as real subprocesses.
"""

from __future__ import annotations

import base64
import io
import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from pipetower.accounts.models import User
from pipetower.api.models import ApiToken
from pipetower.api.services import api_token_authenticate
from pipetower.audit.models import AuditEvent
from pipetower.cli import COMMANDS, main
from pipetower.config.env import new_master_key
from pipetower.core import crypto
from pipetower.core.management.commands._base import database_summary, url_redacted
from pipetower.core.models import DataKey
from tests.core._ops import database_url, embedded_env, pipetower_argv, run_pipetower
from tests.factories import PASSWORD, UserFactory

STRONG = "violet tractor umbrella 8137"


def stdin(text: str) -> io.StringIO:
    return io.StringIO(text)


# --- the command itself --------------------------------------------------------


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert f"\n  {name} " in out
    assert "serve" in out and "rotate-keys" in out


def test_an_unknown_command_is_named_and_points_to_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["srve"]) == 2
    assert capsys.readouterr().err.strip() == (
        "pipetower: there is no command 'srve'. Run `pipetower --help` to see the commands."
    )


def test_no_command_prints_usage_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: pipetower <command>" in capsys.readouterr().err


def test_every_command_maps_to_an_existing_management_command() -> None:
    from django.core.management import get_commands

    available = get_commands()
    for name, (django_name, _) in COMMANDS.items():
        if django_name:  # the others (manage, run) are dispatched by cli.py itself
            assert django_name in available, name


def test_subcommand_help_is_named_after_pipetower(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: pipetower check")


def test_a_bad_option_value_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["web", "--port", "70000"]) == 2
    assert "argument --port: must be between 1 and 65535, not 70000" in capsys.readouterr().err


@pytest.mark.django_db
def test_migrate_runs_djangos_migrate(capsys: pytest.CaptureFixture[str]) -> None:
    # --check exits non-zero when a migration is unapplied: the test database is complete.
    assert main(["migrate", "--check"]) == 0


@pytest.mark.django_db
def test_manage_runs_any_django_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["manage", "showmigrations", "core"]) == 0
    assert "[X] 0001_initial" in capsys.readouterr().out


# --- keygen ------------------------------------------------------------------


def test_keygen_prints_a_fresh_32_byte_key_each_time(capsys: pytest.CaptureFixture[str]) -> None:
    main(["keygen"])
    main(["keygen"])
    first, second = capsys.readouterr().out.split()
    assert first != second
    for key in (first, second):
        assert len(base64.urlsafe_b64decode(key)) == 32
        crypto.parse_master_key(key)  # the format PIPETOWER_MASTER_KEYS accepts


@pytest.mark.embedded_only
def test_keygen_works_in_production_mode_before_any_secret_exists(tmp_path: Path) -> None:
    env = embedded_env(tmp_path, PIPETOWER_ENV="production")

    result = run_pipetower("keygen", env=env)

    assert result.returncode == 0, result.stderr
    assert len(base64.urlsafe_b64decode(result.stdout.strip())) == 32
    assert not (tmp_path / "secrets.json").exists()


# --- check -------------------------------------------------------------------


@pytest.mark.django_db
def test_check_reports_the_configuration_without_secrets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    call_command("configcheck")

    out = capsys.readouterr().out
    vendor = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[connection.vendor]
    assert re.search(rf"database +{vendor}, .*\(reachable\)", out)
    assert re.search(r"broker +(embedded: files in .*queue|redis://)", out)
    assert re.search(r"cache +", out)
    assert re.search(r"email +console: printed and saved in .*mail", out)
    assert re.search(rf"data directory +{re.escape(str(settings.DATA_DIR))}", out)
    assert re.search(r"sign-up +open", out)
    assert re.search(r"master keys +1 key", out)
    assert re.search(r"Google sign-in +not configured", out)
    assert "System checks: no issues." in out
    for secret in [settings.SECRET_KEY, *settings.MASTER_KEYS]:
        assert secret not in out


@pytest.mark.django_db
def test_check_fails_and_explains_when_the_master_key_is_wrong(
    settings, capsys: pytest.CaptureFixture[str]
) -> None:
    crypto.data_key_create(purpose=DataKey.Purpose.TEST)
    settings.MASTER_KEYS = [new_master_key()]
    crypto.forget_cached_keys()

    with pytest.raises(CommandError, match="1 problem needs fixing"):
        call_command("configcheck")

    out = capsys.readouterr().out
    assert "System check error: Some data keys are wrapped with master key" in out
    assert "[pipetower.E001]" in out


@pytest.mark.django_db
def test_check_counts_master_keys_and_names_google_sign_in(
    settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.MASTER_KEYS = [*settings.MASTER_KEYS, new_master_key()]
    settings.SOCIALACCOUNT_PROVIDERS = {
        "google": {
            **settings.SOCIALACCOUNT_PROVIDERS["google"],
            "APPS": [{"client_id": "id.apps", "secret": "very-secret-value"}],
        }
    }

    call_command("configcheck")

    out = capsys.readouterr().out
    assert re.search(r"master keys +2 keys", out)
    assert re.search(r"Google sign-in +configured", out)
    assert "very-secret-value" not in out


@pytest.mark.django_db
def test_check_in_production_wants_an_https_address_and_real_email(
    settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.PRODUCTION = True
    settings.ENVIRONMENT = "production"
    settings.BASE_URL = "http://localhost:8000"
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000

    with pytest.raises(CommandError, match="problems need fixing"):
        call_command("configcheck")

    out = capsys.readouterr().out
    assert re.search(r"mode +production", out)
    assert "PIPETOWER_BASE_URL must be the public https:// address in production" in out
    assert "PIPETOWER_EMAIL is console, which sends nothing" in out


@pytest.mark.embedded_only
def test_check_of_a_fresh_embedded_setup_asks_for_migrate_then_passes(tmp_path: Path) -> None:
    env = embedded_env(tmp_path)

    before = run_pipetower("check", env=env)
    run_pipetower("migrate", "--verbosity", "0", env=env)
    after = run_pipetower("check", env=env)

    assert before.returncode == 1
    assert "run `pipetower migrate`" in before.stdout
    assert "Traceback" not in before.stderr
    assert after.returncode == 0, after.stdout + after.stderr
    assert re.search(r"migrations +all applied", after.stdout)
    assert "SQLite, file" in after.stdout
    assert "embedded: files in" in after.stdout
    assert "Everything Pipetower needs is in place." in after.stdout


@pytest.mark.embedded_only
def test_check_shows_where_the_database_is_but_never_its_password(tmp_path: Path) -> None:
    env = embedded_env(
        tmp_path,
        # Port 1: nothing listens there, so the database cannot be reached.
        DATABASE_URL="postgres://pipetower:hunter2-secret@127.0.0.1:1/pipetower",
        BROKER_URL="redis://:broker-secret@127.0.0.1:6379/0",
    )

    result = run_pipetower("check", env=env)

    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "PostgreSQL, database 'pipetower' on 127.0.0.1:1 as pipetower (NOT reachable)" in output
    assert "Cannot reach the database" in output
    assert "System checks: skipped, the database does not answer." in output
    assert "redis://:***@127.0.0.1:6379/0" in output
    assert "hunter2-secret" not in output
    assert "broker-secret" not in output


def test_database_summary_leaves_the_password_out() -> None:
    summary = database_summary(
        {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "pipetower",
            "USER": "app",
            "PASSWORD": "s3cret",
            "HOST": "db.internal",
            "PORT": 5432,
        }
    )
    assert summary == "PostgreSQL, database 'pipetower' on db.internal:5432 as app"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://user:pw@host/1", "redis://user:***@host/1"),
        ("redis://host:6379/0", "redis://host:6379/0"),
    ],
)
def test_urls_are_shown_with_the_password_masked(url: str, shown: str) -> None:
    assert url_redacted(url) == shown


# --- createadmin / createuser --------------------------------------------------


@pytest.mark.django_db
def test_createadmin_makes_a_verified_staff_superuser(capsys: pytest.CaptureFixture[str]) -> None:
    call_command(
        "createadmin",
        "--email",
        "Root@Example.com",
        "--name",
        "Grace Hopper",
        "--password-stdin",
        stdin=stdin(STRONG + "\n"),
    )

    admin = User.objects.get(email="root@example.com")
    assert admin.is_staff and admin.is_superuser
    assert admin.check_password(STRONG)
    assert admin.name == "Grace Hopper"
    assert EmailAddress.objects.filter(
        user=admin, email="root@example.com", verified=True, primary=True
    ).exists()
    event = AuditEvent.objects.get(verb="account.created")
    assert event.target_id == str(admin.pk)
    assert event.data["staff"] is True
    assert "Created staff account Grace Hopper <root@example.com>" in capsys.readouterr().out


@pytest.mark.django_db
def test_createuser_makes_a_verified_user_who_is_not_staff() -> None:
    call_command(
        "createuser",
        "--email",
        "ada@example.com",
        "--name",
        "Ada Lovelace",
        "--password-stdin",
        stdin=stdin(STRONG + "\n"),
    )

    user = User.objects.get(email="ada@example.com")
    assert not user.is_staff and not user.is_superuser
    assert user.check_password(STRONG)
    assert EmailAddress.objects.get(user=user).verified


@pytest.mark.django_db
def test_createuser_without_a_password_leaves_none_usable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    call_command("createuser", "--email", "ada@example.com", "--name", "Ada", "--no-password")

    user = User.objects.get(email="ada@example.com")
    assert not user.has_usable_password()
    assert "No password is set" in capsys.readouterr().out


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["--email", "not-an-email"], STRONG, "'not-an-email' is not a valid email address."),
        (["--email", "x@example.com", "--name", "  "], STRONG, "Give the person's name"),
        (["--email", "x@example.com"], "short", "That password is not accepted:"),
        (["--email", "x@example.com"], "password1234", "This password is too common."),
        (["--email", "x@example.com"], "", "standard input held no password"),
    ],
)
def test_createadmin_rejects_bad_input_and_creates_nothing(
    args: list[str], password: str, message: str
) -> None:
    if "--name" not in args:
        args = [*args, "--name", "Grace Hopper"]

    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("createadmin", *args, "--password-stdin", stdin=stdin(password + "\n"))

    assert not User.objects.exists()


@pytest.mark.django_db
def test_an_email_address_cannot_be_used_twice(user: User) -> None:
    with pytest.raises(CommandError, match=r"An account with the email address ada@example\.com"):
        call_command(
            "createuser",
            "--email",
            "ADA@example.com",
            "--name",
            "Ada Again",
            "--password-stdin",
            stdin=stdin(STRONG + "\n"),
        )
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_without_a_terminal_the_password_must_come_from_stdin() -> None:
    with pytest.raises(CommandError, match="Pipe the password in with --password-stdin"):
        call_command(
            "createadmin", "--email", "root@example.com", "--name", "Root", stdin=stdin("")
        )


@pytest.mark.django_db
def test_createuser_takes_one_password_source() -> None:
    with pytest.raises(CommandError, match="Choose one of --no-password and --password-stdin"):
        call_command(
            "createuser",
            "--email",
            "ada@example.com",
            "--name",
            "Ada",
            "--no-password",
            "--password-stdin",
            stdin=stdin(STRONG + "\n"),
        )


def run_on_terminal(args: list[str], answers: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run `pipetower` on a pseudo-terminal, typing each answer after a 'Password' prompt."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        pipetower_argv(*args),
        env=env,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
    )
    os.close(terminal)
    output = b""
    pending = list(answers)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(controller, 1024)
            except OSError:  # every copy of the terminal is closed: the command ended
                break
            if not chunk:
                break
            output += chunk
            # Answer each new prompt once it shows (echo is off by then).
            answered = len(answers) - len(pending)
            if pending and output.count(b"Password") > answered and output.endswith(b": "):
                os.write(controller, pending.pop(0).encode() + b"\n")
        else:
            process.kill()
            raise AssertionError(f"pipetower did not finish in time:\n{output.decode()}")
        return process.wait(timeout=30), output.decode(errors="replace")
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.django_db(transaction=True)
def test_createadmin_asks_for_the_password_twice_on_a_terminal() -> None:
    env = embedded_env(settings.DATA_DIR, DATABASE_URL=database_url(connection.settings_dict))

    code, output = run_on_terminal(
        ["createadmin", "--email", "root@example.com", "--name", "Root"], [STRONG, STRONG], env
    )

    assert code == 0, output
    assert "Password:" in output and "Password (again):" in output
    assert STRONG not in output  # not echoed
    # The command ran with Pipetower's own settings: the hash is Argon2.
    stored = User.objects.get(email="root@example.com").password
    assert Argon2PasswordHasher().verify(STRONG, stored)


@pytest.mark.django_db(transaction=True)
def test_createadmin_stops_when_the_two_passwords_differ() -> None:
    env = embedded_env(settings.DATA_DIR, DATABASE_URL=database_url(connection.settings_dict))

    code, output = run_on_terminal(
        ["createadmin", "--email", "root@example.com", "--name", "Root"],
        [STRONG, STRONG + "x"],
        env,
    )

    assert code == 1
    assert "The two passwords do not match; nothing was changed." in output
    assert not User.objects.exists()


# --- token create ------------------------------------------------------------


@pytest.mark.django_db
def test_token_create_prints_the_token_once_and_it_works(
    user: User, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command(
        "token", "create", "--email", user.email, "--scope", "write", "--name", "Deploy bot"
    )

    captured = capsys.readouterr()
    plaintext = captured.out.strip()
    assert re.fullmatch(r"ptk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", plaintext)
    assert "Copy it now: Pipetower shows it only this once." in captured.err
    assert plaintext not in captured.err
    token = ApiToken.objects.get(user=user)
    assert (token.name, token.scope, token.expires_at) == ("Deploy bot", "write", None)
    assert api_token_authenticate(raw_token=plaintext, ip=None) == token


@pytest.mark.django_db
def test_token_create_can_expire(user: User, capsys: pytest.CaptureFixture[str]) -> None:
    from django.utils import timezone

    call_command("token", "create", "--email", user.email, "--scope", "read", "--expires-days", "7")

    token = ApiToken.objects.get(user=user)
    assert token.scope == "read"
    assert token.name == "Command line"
    assert token.expires_at is not None
    days = (token.expires_at - timezone.now()).total_seconds() / 86400
    assert 6.99 < days <= 7


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--email", "nobody@example.com", "--scope", "read"], "There is no account"),
        (["--email", "ada@example.com", "--scope", "admin"], "invalid choice: 'admin'"),
        (["--email", "ada@example.com", "--scope", "read", "--expires-days", "0"], "must be 1"),
        (["--email", "ada@example.com", "--scope", "read", "--name", " "], "Give the token a name"),
    ],
)
def test_token_create_explains_bad_input(user: User, args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("token", "create", *args)
    assert not ApiToken.objects.exists()


@pytest.mark.django_db
def test_token_create_refuses_a_disabled_account(capsys: pytest.CaptureFixture[str]) -> None:
    disabled = UserFactory(email="gone@example.com", is_active=False)
    with pytest.raises(CommandError, match="disabled"):
        call_command("token", "create", "--email", disabled.email, "--scope", "read")


# --- rotate-keys -------------------------------------------------------------


@pytest.mark.django_db
def test_rotate_keys_moves_every_data_key_to_the_first_master_key(
    settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.cryptotest.models import Keypair

    old, new = new_master_key(), new_master_key()
    settings.MASTER_KEYS = [old]
    crypto.forget_cached_keys()
    owner = UserFactory(password=PASSWORD)
    Keypair.objects.create(owner=owner, private_key="-----BEGIN KEY-----")
    settings.MASTER_KEYS = [new, old]
    crypto.forget_cached_keys()

    call_command("rotate_keys")

    out = capsys.readouterr().out
    new_id = crypto.parse_master_key(new).key_id
    assert f"Re-wrapped 1 data key with master key {new_id}." in out
    assert "cryptotest.Keypair: 1 value re-encrypted" in out
    settings.MASTER_KEYS = [new]  # the old key retired
    crypto.forget_cached_keys()
    assert Keypair.objects.get().private_key == "-----BEGIN KEY-----"


@pytest.mark.django_db
def test_rotate_keys_stops_with_a_message_when_a_master_key_is_missing(settings) -> None:
    settings.MASTER_KEYS = [new_master_key()]
    crypto.forget_cached_keys()
    crypto.data_key_create(purpose=DataKey.Purpose.TEST)
    settings.MASTER_KEYS = [new_master_key()]
    crypto.forget_cached_keys()

    with pytest.raises(CommandError, match="is not in PIPETOWER_MASTER_KEYS"):
        call_command("rotate_keys")
