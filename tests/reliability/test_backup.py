"""`pipetower backup` / `pipetower restore` for the embedded default, as real commands.

The backup is taken while another process keeps writing to the database, then
restored into an empty data directory: the copy passes SQLite's integrity
check, holds what was committed before it started, and its encrypted secrets
open with the restored keys.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.core._ops import embedded_env, pipetower_argv, run_pipetower, wait_until

pytestmark = pytest.mark.embedded_only

SHELL = ("manage", "shell", "--no-imports", "--command")


def heartbeats(database: Path) -> int:
    with contextlib.closing(sqlite3.connect(database, timeout=20)) as db:
        return int(db.execute("SELECT count(*) FROM core_workerheartbeat").fetchone()[0])


def shell(env: dict[str, str], code: str) -> str:
    done = run_pipetower(*SHELL, code, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def live_data_dir(tmp_path: Path) -> tuple[Path, dict[str, str], int, str]:
    """A migrated data directory with a data key and one value encrypted under it."""
    data = tmp_path / "live"
    env = embedded_env(data)
    assert run_pipetower("migrate", "--verbosity", "0", env=env).returncode == 0
    key_id, token = shell(
        env,
        "from pipetower.core import crypto; k = crypto.data_key_create(purpose='test'); "
        "print(k.pk, crypto.encrypt('the secret', data_key=k, context='backup.test'))",
    ).split()
    return data, env, int(key_id), token


def test_a_backup_taken_while_writing_restores_whole_and_readable(
    live_data_dir: tuple[Path, dict[str, str], int, str], tmp_path: Path
) -> None:
    data, env, key_id, token = live_data_dir
    (data / "media").mkdir(exist_ok=True)
    (data / "media" / "avatar.png").write_bytes(b"not really a png")
    # A writer that keeps committing rows for the whole backup.
    writer = subprocess.Popen(
        pipetower_argv(
            *SHELL,
            "import time\n"
            "from django.utils import timezone\n"
            "from pipetower.core.models import WorkerHeartbeat\n"
            "for i in range(100000):\n"
            "    WorkerHeartbeat.objects.create(hostname=f'w{i}', seen_at=timezone.now())\n",
        ),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: heartbeats(data / "pipetower.sqlite3") >= 50, timeout=60, interval=0.2)
        archive = tmp_path / "backup.tar.gz"
        done = run_pipetower("backup", "--output", str(archive), env=env, cwd=tmp_path)
        assert writer.poll() is None, "the writer was still writing when the backup ended"
    finally:
        writer.kill()
        writer.wait()

    assert done.returncode == 0, done.stderr
    assert "It holds the master key" in done.stdout
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {"manifest.json", "pipetower.sqlite3", "secrets.json", "media/avatar.png"} <= names
    assert not any(name.startswith(("queue", "cache", "static")) for name in names)

    restored = tmp_path / "restored"
    restored.mkdir()
    env_restored = embedded_env(restored)
    done = run_pipetower("restore", str(archive), env=env_restored)
    assert done.returncode == 0, done.stderr

    database = restored / "pipetower.sqlite3"
    with sqlite3.connect(database) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = check.execute("SELECT count(*) FROM core_workerheartbeat").fetchone()[0]
    print(f"\n[backup] {rows} rows written by the concurrent writer were in the snapshot")
    assert rows >= 50
    assert json.loads((restored / "secrets.json").read_text()) == json.loads(
        (data / "secrets.json").read_text()
    )
    assert (restored / "media" / "avatar.png").read_bytes() == b"not really a png"
    assert (
        shell(
            env_restored,
            "from pipetower.core import crypto; "
            f"print(crypto.decrypt({token!r}, context='backup.test', data_key_id={key_id}))",
        )
        == "the secret"
    )


def test_restore_refuses_to_replace_a_database_without_force(
    live_data_dir: tuple[Path, dict[str, str], int, str], tmp_path: Path
) -> None:
    data, env, _, _ = live_data_dir
    archive = tmp_path / "backup.tar.gz"
    assert run_pipetower("backup", "--output", str(archive), env=env).returncode == 0

    refused = run_pipetower("restore", str(archive), env=env)
    assert refused.returncode != 0
    assert "A database already exists" in refused.stderr
    assert "Traceback" not in refused.stderr

    forced = run_pipetower("restore", str(archive), "--force", env=env)
    assert forced.returncode == 0, forced.stderr
    aside = [p for p in data.iterdir() if p.name.startswith("before-restore-")]
    assert len(aside) == 1 and (aside[0] / "pipetower.sqlite3").exists()


def test_backup_on_postgresql_points_to_pg_dump(tmp_path: Path) -> None:
    env = embedded_env(tmp_path, DATABASE_URL="postgres://nobody@127.0.0.1:1/none")

    done = run_pipetower("backup", env=env, cwd=tmp_path)

    assert done.returncode != 0
    assert "back it up with pg_dump" in done.stderr
    assert not list(tmp_path.glob("pipetower-backup-*"))
