"""Reading configuration from the environment, with runnable defaults.

Everything Pipetower can be told comes through environment variables (the
README has the table). Unset means the embedded default; in production mode
(`PIPETOWER_ENV=production`) a missing secret stops start-up with a clear
message instead of silently inventing one.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path


class ConfigurationError(RuntimeError):
    """Raised when Pipetower cannot start with the configuration it was given."""


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationError(f"{name} must be true or false, not {raw!r}.")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, not {raw!r}.") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def data_dir() -> Path:
    path = Path(env_str("PIPETOWER_DATA_DIR", "var")).resolve()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def new_master_key() -> str:
    """A fresh 256-bit master key, URL-safe base64 encoded."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def generated_secrets(directory: Path) -> dict[str, str]:
    """Secrets for the embedded default, created once with mode 0600.

    The file is created with O_EXCL so that several processes starting at the
    same moment agree on one set of secrets.
    """
    path = directory / "secrets.json"
    if not path.exists():
        values = {
            "SECRET_KEY": secrets.token_urlsafe(50),
            "PIPETOWER_MASTER_KEYS": new_master_key(),
        }
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                json.dump(values, handle, indent=2)
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"Cannot read the generated secrets in {path.name} inside the data directory: {exc}. "
            "Restore the file from a backup; without it encrypted data cannot be read."
        ) from exc
    if not isinstance(loaded, dict):
        raise ConfigurationError(f"{path.name} in the data directory is not a JSON object.")
    return {str(k): str(v) for k, v in loaded.items()}
