"""The baseline: `uname -a` on every host with a plain asyncssh script, all at once.

    python bench/plain_asyncssh.py HOSTS.json

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

import asyncssh


async def one(host: str, port: int, user: str, key: asyncssh.SSHKey, pin: str) -> bool:
    known = asyncssh.import_known_hosts(f"[{host}]:{port} {pin}\n")
    async with asyncssh.connect(
        host,
        port,
        username=user,
        client_keys=[key],
        known_hosts=known,
        config=None,
        agent_path=None,
    ) as conn:
        result = await conn.run("uname -a")
        return str(result.stdout).startswith("Linux")


async def main(path: str) -> None:
    spec = json.loads(Path(path).read_text())
    key = asyncssh.import_private_key(spec["key"])
    began = time.monotonic()
    results = await asyncio.gather(
        *(one(h, p, spec["user"], key, pin) for h, p, pin in spec["hosts"]),
        return_exceptions=True,
    )
    elapsed = time.monotonic() - began
    print(json.dumps({"seconds": elapsed, "ok": sum(r is True for r in results)}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
