"""API keys: a keys file of hashed bearer tokens with scopes (``MLAPI_API_KEYS_FILE``).

Only a token's sha256 is stored: tokens are 32 random bytes, so a plain hash cannot be
brute-forced, and the server never holds a usable secret. The file is re-read when its
modification time changes, so `mlapi tokens create/revoke` take effect without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SCOPES = ("predict", "feedback", "admin")
TOKEN_PREFIX = "mlapi_"


class KeysFileError(ValueError):
    """The keys file cannot be read or a request to change it is invalid."""


@dataclass(frozen=True)
class Key:
    name: str
    digest: str
    scopes: tuple[str, ...]
    created: str


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _read(path: Path) -> list[Key]:
    try:
        data = json.loads(path.read_text())
        return [Key(k["name"], k["sha256"], tuple(k["scopes"]), k.get("created", ""))
                for k in data.get("keys", [])]
    except FileNotFoundError:
        return []
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise KeysFileError(f"{path} is not a valid keys file: {exc}") from None


def _write(path: Path, keys: list[Key]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"keys": [{"name": k.name, "sha256": k.digest, "scopes": list(k.scopes),
                      "created": k.created} for k in keys]}
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(body, fh, indent=2)
        fh.write("\n")
    os.chmod(tmp, 0o600)  # hashes only, but nobody else needs to read it
    os.replace(tmp, path)


def create(path: Path, name: str, scopes: list[str]) -> str:
    """Add a key and return its token (shown once, never stored)."""
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise KeysFileError(f"scopes must be some of {', '.join(SCOPES)}; got {scopes}")
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise KeysFileError("the name must be letters, digits, '-' or '_'")
    keys = _read(path)
    if any(k.name == name for k in keys):
        raise KeysFileError(f"a key named {name!r} exists; revoke it first")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    keys.append(Key(name, digest(token), tuple(scopes),
                    datetime.now(UTC).isoformat(timespec="seconds")))
    _write(path, keys)
    return token


def revoke(path: Path, name: str) -> None:
    keys = _read(path)
    if not any(k.name == name for k in keys):
        raise KeysFileError(f"no key named {name!r}")
    _write(path, [k for k in keys if k.name != name])


def listing(path: Path) -> list[Key]:
    return _read(path)


class KeyRing:
    """The keys the API checks against, reloaded when the file changes."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._keys: list[Key] = []

    def _current(self) -> list[Key]:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                self._keys = _read(self.path) if stamp else []
                self._stamp = stamp
            return self._keys

    def find(self, token: str) -> Key | None:
        """The key for a token, compared in constant time against every stored hash."""
        wanted = digest(token)
        found = None
        for key in self._current():
            if hmac.compare_digest(key.digest, wanted):
                found = key
        return found
