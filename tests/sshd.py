"""Real OpenSSH servers for the tests: one `sshd` per loopback port.

Each `SshdServer` runs `sshd -D -e -f <config>` in the foreground with its own
throwaway ed25519 host key (or several types: `host_key_types`), pid file and
`authorized_keys` file (which the test controls through `authorize()`), and logs
in a dedicated unprivileged user (`pipetower-test`), never root: root's shell
start-up files are slow here and a real customer would not let Pipetower in as
root either.

Fixtures (registered in tests/conftest.py):

- `sshd`: one running server, stopped after the test.
- `sshd_fleet`: a factory, `sshd_fleet(50)` starts fifty at once.
- `sshd_password`: the test user's password, set for password-auth tests.
- `free_port`: a loopback port where nothing listens (connection refused).
- `silent_listener`: a port that accepts TCP connections and never says a word.

Tests run as root (sshd must start as root to switch users); without an sshd
binary the SSH tests are skipped with the reason.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

__all__ = [
    "TEST_PASSWORD",
    "TEST_USER",
    "SshdServer",
    "free_port",
    "silent_listener",
    "sshd",
    "sshd_fleet",
    "sshd_password",
    "sshd_user",
]

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
TEST_USER = "pipetower-test"
TEST_PASSWORD = "pipetower-test-password-7f3a"
READY_TIMEOUT = 10.0


def sshd_missing_reason() -> str | None:
    if not os.path.exists(SSHD) or not os.path.exists(SSH_KEYGEN):
        return "OpenSSH server (sshd, ssh-keygen) is not installed: install openssh-server."
    if os.geteuid() != 0:
        return "The sshd fixtures start sshd as root to log in a test user; run the tests as root."
    return None


def ensure_test_user() -> None:
    """Create `pipetower-test` (home, bash) if missing; password field `*`, never locked `!`."""
    try:
        entry = pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--create-home", "--shell", "/bin/bash", "--password", "*", TEST_USER],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(TEST_USER)
    home = Path(entry.pw_dir)
    if not home.is_dir():
        home.mkdir(parents=True)
        os.chown(home, entry.pw_uid, entry.pw_gid)
    # With `UsePAM no` sshd refuses an account whose password field starts with `!`.
    shadow = subprocess.run(["getent", "shadow", TEST_USER], capture_output=True, text=True)
    if shadow.stdout.split(":")[1:2] and shadow.stdout.split(":")[1].startswith("!"):
        subprocess.run(["usermod", "--password", "*", TEST_USER], check=True, capture_output=True)
    # sshd needs its privilege separation directory.
    Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)


def set_test_user_password(password: str = TEST_PASSWORD) -> str:
    subprocess.run(
        ["chpasswd"], input=f"{TEST_USER}:{password}\n", text=True, check=True, capture_output=True
    )
    return password


def pick_free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _keygen(path: Path, kind: str = "ed25519") -> None:
    for old in (path, path.with_suffix(".pub")):
        old.unlink(missing_ok=True)
    size = ["-b", "2048"] if kind == "rsa" else []
    subprocess.run(
        [
            SSH_KEYGEN,
            "-q",
            "-t",
            kind,
            *size,
            "-N",
            "",
            "-C",
            "pipetower-test-host",
            "-f",
            str(path),
        ],
        check=True,
        capture_output=True,
    )


def _fingerprint(public_line: str) -> str:
    import asyncssh

    return str(asyncssh.import_public_key(public_line).get_fingerprint("sha256"))


class SshdServer:
    """One real sshd on a loopback port. Not started until `start()`."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        password_auth: bool = False,
        max_startups: str = "1000:30:2000",
        max_sessions: int = 100,
        host_key_types: tuple[str, ...] = ("ed25519",),
    ) -> None:
        """`host_key_types`: the host's keys ("ed25519", "ecdsa", "rsa"); ed25519 by default."""
        self.host = host
        self.host_key_types = host_key_types
        self.port = 0
        self.user = TEST_USER
        self.password_auth = password_auth
        self.max_startups = max_startups
        self.max_sessions = max_sessions
        self.dir = Path(tempfile.mkdtemp(prefix="pipetower-sshd-"))
        self.dir.chmod(0o755)  # sshd reads authorized_keys as the test user
        self.host_key_paths = {kind: self.dir / f"ssh_host_{kind}_key" for kind in host_key_types}
        self.host_key_path = self.host_key_paths.get("ed25519", self.dir / "ssh_host_ed25519_key")
        self.config_path = self.dir / "sshd_config"
        self.pid_path = self.dir / "sshd.pid"
        self.log_path = self.dir / "sshd.log"
        self.authorized_keys_path = self.dir / "authorized_keys"
        self.authorized_keys_path.write_text("")
        self.authorized_keys_path.chmod(0o644)
        self.process: subprocess.Popen[bytes] | None = None

    # --- facts a test needs ---------------------------------------------------

    @property
    def host_key_line(self) -> str:
        """The host's public key as an OpenSSH line (`ssh-ed25519 AAAA…`), no comment."""
        parts = self.host_key_path.with_suffix(".pub").read_text().split()
        return f"{parts[0]} {parts[1]}"

    def host_key_line_of(self, kind: str) -> str:
        """The host's key of one type ("ed25519", "ecdsa", "rsa") as an OpenSSH line."""
        parts = self.host_key_paths[kind].with_suffix(".pub").read_text().split()
        return f"{parts[0]} {parts[1]}"

    def keygen_fingerprint(self, kind: str) -> str:
        """What `ssh-keygen -lf` prints for the key, as an admin runs it on the server."""
        return subprocess.run(
            [SSH_KEYGEN, "-lf", str(self.host_key_paths[kind].with_suffix(".pub"))],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    @property
    def fingerprint(self) -> str:
        return _fingerprint(self.host_key_line)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    # --- control ----------------------------------------------------------------

    def authorize(self, public_key_line: str) -> None:
        """Let a key log in as the test user (appends to this server's authorized_keys)."""
        with self.authorized_keys_path.open("a") as handle:
            handle.write(public_key_line.strip() + "\n")

    def deauthorize_all(self) -> None:
        self.authorized_keys_path.write_text("")

    def _write_config(self) -> None:
        listen = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        self.config_path.write_text(
            "\n".join(
                [
                    f"ListenAddress {listen}",
                    *(f"HostKey {path}" for path in self.host_key_paths.values()),
                    f"PidFile {self.pid_path}",
                    f"AuthorizedKeysFile {self.authorized_keys_path}",
                    f"AllowUsers {TEST_USER}",
                    "UsePAM no",
                    "StrictModes no",
                    "PermitRootLogin no",
                    "PubkeyAuthentication yes",
                    f"PasswordAuthentication {'yes' if self.password_auth else 'no'}",
                    "KbdInteractiveAuthentication no",
                    f"MaxStartups {self.max_startups}",
                    f"MaxSessions {self.max_sessions}",
                    "UseDNS no",
                    "PrintMotd no",
                    "PrintLastLog no",
                    "LogLevel ERROR",
                    "Subsystem sftp internal-sftp",
                    "",
                ]
            )
        )

    def launch(self) -> None:
        """Start sshd without waiting for it (see `wait_ready`)."""
        for kind, path in self.host_key_paths.items():
            if not path.exists():
                _keygen(path, kind)
        if not self.port:
            self.port = pick_free_port(self.host)
        self._write_config()
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        finally:
            log.close()

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Poll the port until sshd accepts connections; bounded by `timeout`."""
        assert self.process is not None
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited with {self.process.returncode}: {self.log()}")
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.settimeout(0.5)
                if probe.connect_ex((self.host, self.port)) == 0:
                    return
            time.sleep(0.01)
        raise RuntimeError(f"sshd on port {self.port} not ready after {timeout} s: {self.log()}")

    def start(self) -> SshdServer:
        for _attempt in range(3):  # a port picked as free can be taken before sshd binds it
            self.launch()
            try:
                self.wait_ready()
                return self
            except RuntimeError:
                self._kill()
                self.port = 0
        raise RuntimeError(f"sshd did not start: {self.log()}")

    def regenerate_host_key_and_restart(self) -> str:
        """Give the host a new host key (same port); returns the new fingerprint."""
        port = self.port
        self._kill()
        _keygen(self.host_key_path)
        self.port = port
        self.launch()
        self.wait_ready()
        return self.fingerprint

    def _kill(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def stop(self) -> None:
        self._kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"<SshdServer {self.host}:{self.port} pid={self.pid}>"


def start_fleet(count: int, **options: object) -> list[SshdServer]:
    """Start `count` servers at once: keys in parallel, launch all, then wait for each."""
    servers = [SshdServer(**options) for _ in range(count)]  # type: ignore[arg-type]
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda s: _keygen(s.host_key_path), servers))
        for server in servers:
            server.port = pick_free_port(server.host)
            server.launch()
        for server in servers:
            try:
                server.wait_ready()
            except RuntimeError:
                server._kill()
                server.port = 0
                server.start()
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


# --- pytest fixtures -----------------------------------------------------------


@pytest.fixture(scope="session")
def sshd_user() -> str:
    """The dedicated login user, created on first use; skips when sshd is absent."""
    reason = sshd_missing_reason()
    if reason:
        pytest.skip(reason)
    ensure_test_user()
    return TEST_USER


@pytest.fixture(scope="session")
def sshd_password(sshd_user: str) -> str:
    return set_test_user_password()


@pytest.fixture
def sshd(sshd_user: str) -> Iterator[SshdServer]:
    server = SshdServer(password_auth=True).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sshd_fleet(sshd_user: str) -> Iterator[Callable[..., list[SshdServer]]]:
    started: list[SshdServer] = []

    def make(count: int, **options: object) -> list[SshdServer]:
        servers = start_fleet(count, **options)
        started.extend(servers)
        return servers

    try:
        yield make
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def free_port() -> int:
    """A loopback port with nothing listening: connecting is refused."""
    return pick_free_port()


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A loopback port that completes TCP handshakes and then never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def allow_sudo_as(target_user: str) -> str:
    """Let the test user run commands as `target_user` with `sudo -n` (no password).

    Added for the run-as tests of actions; needs the `sudo` package. Returns the user.
    """
    if not shutil.which("sudo"):
        pytest.skip("sudo is not installed; .ci/run installs it for the run-as tests.")
    rule = Path("/etc/sudoers.d/pipetower-test")
    rule.parent.mkdir(mode=0o750, exist_ok=True)
    rule.write_text(f"{TEST_USER} ALL=({target_user}) NOPASSWD: ALL\n")
    rule.chmod(0o440)
    return target_user
