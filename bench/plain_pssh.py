"""A baseline: `uname -a` on every host with parallel-ssh (ParallelSSHClient), all at once.

    python bench/plain_pssh.py HOSTS.json

HOSTS.json is the file bench/plain_asyncssh.py reads: {"key": "<OpenSSH private
key>", "user": "...", "hosts": [[host, port, "<host key line>"], ...]}. The
native client (libssh2 through ssh2-python), one greenlet per host
(`pool_size` = the number of hosts, not the default 100), the same key from
memory, no agent and no ~/.ssh identities.

Host keys: parallel-ssh has no host key verification (no known_hosts option;
it accepts whatever key the server presents). So this script checks afterwards:
a host counts as ok only if its answer starts with "Linux" *and* the key its
session saw (libssh2's `hostkey()`) is the pinned one. That proves the run
reached the pinned servers; unlike Pipetower, asyncssh and ansible here, it
does not refuse an unknown key before authenticating. Prints JSON: the wall
time in seconds (client created to all output read), how many hosts were ok,
and how many presented the pinned key.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from pathlib import Path

from pssh.clients import ParallelSSHClient
from pssh.config import HostConfig


def main(path: str) -> None:
    spec = json.loads(Path(path).read_text())
    hosts = spec["hosts"]
    key = spec["key"].encode()
    began = time.monotonic()
    client = ParallelSSHClient(
        [h for h, _p, _pin in hosts],
        host_config=[
            HostConfig(port=p, user=spec["user"], private_key=key, allow_agent=False)
            for _h, p, _pin in hosts
        ],
        pool_size=len(hosts),
        allow_agent=False,
        identity_auth=False,
        num_retries=1,
        timeout=60,
    )
    output = client.run_command("uname -a", stop_on_errors=False)
    client.join(output)
    answers = [
        (None if out.exception else "\n".join(out.stdout or ()), out.client) for out in output
    ]
    elapsed = time.monotonic() - began
    ok = pinned = 0
    for (text, host_client), (_h, _p, pin) in zip(answers, hosts, strict=True):
        seen = host_client.session.hostkey()[0] if host_client and host_client.session else b""
        matches = bytes(seen) == base64.b64decode(pin.split()[1])
        pinned += matches
        ok += bool(matches and text and text.startswith("Linux"))
    print(json.dumps({"seconds": elapsed, "ok": ok, "pinned": pinned}))


if __name__ == "__main__":
    main(sys.argv[1])
