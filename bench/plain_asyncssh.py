"""The baseline: `uname -a` on every host with a plain asyncssh script, all at once.

    python bench/plain_asyncssh.py HOSTS.json          (cold: connect and run, timed)
    python bench/plain_asyncssh.py HOSTS.json --warm   (connect first; only the runs timed)

HOSTS.json: {"key": "<OpenSSH private key>", "user": "...", "hosts": [[host, port,
"<host key line>"], ...]}. Host keys are checked as Pipetower does (pinned). Prints
the wall time in seconds and how many hosts answered "Linux…".
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import asyncssh


def connect(host: str, port: int, user: str, key: asyncssh.SSHKey, pin: str) -> Any:
    """asyncssh.connect: awaited, the connection; with `async with`, closed after."""
    known = asyncssh.import_known_hosts(f"[{host}]:{port} {pin}\n")
    return asyncssh.connect(
        host,
        port,
        username=user,
        client_keys=[key],
        known_hosts=known,
        config=None,
        agent_path=None,
    )


async def uname(conn: asyncssh.SSHClientConnection) -> bool:
    result = await conn.run("uname -a")
    return str(result.stdout).startswith("Linux")


async def one(host: str, port: int, user: str, key: asyncssh.SSHKey, pin: str) -> bool:
    async with connect(host, port, user, key, pin) as conn:
        return await uname(conn)


async def main(path: str, warm: bool) -> None:
    spec = json.loads(Path(path).read_text())
    key = asyncssh.import_private_key(spec["key"])
    if warm:
        conns = await asyncio.gather(
            *(connect(h, p, spec["user"], key, pin) for h, p, pin in spec["hosts"])
        )
        began = time.monotonic()
        results = await asyncio.gather(*(uname(c) for c in conns), return_exceptions=True)
        elapsed = time.monotonic() - began
        for conn in conns:
            conn.close()
    else:
        began = time.monotonic()
        results = await asyncio.gather(
            *(one(h, p, spec["user"], key, pin) for h, p, pin in spec["hosts"]),
            return_exceptions=True,
        )
        elapsed = time.monotonic() - began
    print(json.dumps({"seconds": elapsed, "ok": sum(r is True for r in results)}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], warm="--warm" in sys.argv[2:]))
