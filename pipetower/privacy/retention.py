"""How long mail saved in the data directory is kept, and erasing one person's mail.

The embedded mail backend (`pipetower.core.mail`) saves every message in
`<data dir>/mail/`, one file per sending. `mail_expired_purge` deletes the
files older than PIPETOWER_MAIL_RETENTION_DAYS (30 by default);
`mail_purge_for` removes every saved message addressed to one of a person's
addresses (on erasure), keeping the other messages of a shared file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings

from pipetower.core.mail import RULE

SEPARATOR = RULE + "\n"


def _mail_files() -> list[Path]:
    folder = Path(settings.MAIL_DIR)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file())


def mail_expired_purge(*, now: float | None = None) -> int:
    """Delete saved mail older than the retention period; how many files went."""
    limit = (now if now is not None else time.time()) - settings.MAIL_RETENTION_DAYS * 86400
    deleted = 0
    for path in _mail_files():
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
                deleted += 1
        except FileNotFoundError:  # another purge got there first
            continue
    return deleted


def _addressed_to(message: str, addresses: set[str]) -> bool:
    headers = message.split("\n\n", 1)[0].lower()
    for line in headers.splitlines():
        if line.startswith(("to:", "cc:", "bcc:")) and any(a in line for a in addresses):
            return True
    return False


def mail_purge_for(*, addresses: Iterable[str]) -> int:
    """Remove every saved message to one of `addresses`; how many messages went."""
    wanted = {a.lower() for a in addresses if a}
    if not wanted:
        return 0
    removed = 0
    for path in _mail_files():
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            continue
        messages = [m for m in text.split(SEPARATOR) if m.strip()]
        kept = [m for m in messages if not _addressed_to(m, wanted)]
        if len(kept) == len(messages):
            continue
        removed += len(messages) - len(kept)
        if kept:
            fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write("".join(m + SEPARATOR for m in kept))
            os.replace(path.with_suffix(".tmp"), path)
        else:
            path.unlink(missing_ok=True)
    return removed


def privacy_purge() -> dict[str, int]:
    """Everything the scheduler purges, at once (`pipetower privacy purge`)."""
    from pipetower.privacy.deletion import account_deletions_purge, team_deletions_purge
    from pipetower.privacy.export import export_jobs_purge
    from pipetower.teams.retention import runs_expired_purge
    from pipetower.teams.services import invitations_purge

    return {
        "accounts erased": account_deletions_purge(),
        "teams erased": team_deletions_purge(),
        "export files deleted": export_jobs_purge(),
        "saved mail files deleted": mail_expired_purge(),
        "expired invitations deleted": invitations_purge(),
        "runs past their team's run history period deleted": runs_expired_purge().runs,
    }
