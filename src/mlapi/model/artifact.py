"""Model files: a compressed skops archive plus a JSON metadata file beside it.

Never pickle or joblib: a skops archive lists the types it would build, and ``load`` refuses
anything outside scikit-learn, NumPy and SciPy. The metadata carries the archive's sha256, and
``load`` refuses an archive whose bytes do not match it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import skops.io as sio

from .embedding import EmbeddingMismatch
from .estimators import embeddings_in

# Modules whose types a model archive may contain. Everything else (a user's own class, os,
# subprocess, builtins.eval ...) makes the archive untrusted.
TRUSTED_MODULES = ("sklearn.", "numpy", "scipy.")
# Our own types, each by its exact name: the multilingual kind's embedding step and the
# selector of its columns, the encoder kind's encoder (their weights are never in the archive;
# see embedding.py and encoder.py).
TRUSTED_TYPES = ("mlapi.model.embedding.SentenceEmbedding",
                 "mlapi.model.embedding.EmbeddingColumns",
                 "mlapi.model.encoder.SentenceEncoder")


class ModelError(RuntimeError):
    """A model that cannot be used: missing, tampered with, or holding untrusted types."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_time() -> datetime:
    """Now, or ``SOURCE_DATE_EPOCH`` when set (reproducible builds: the image's model version)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), UTC)
    return datetime.now(UTC)


_OBJECT_ID = re.compile(rb'("__id__": |"file": ")(\d+)')


def _normalize_zip(path: Path) -> None:
    """Rewrite the archive so that the same model always gives the same bytes.

    skops names objects by their ``id()`` (a memory address: different on every run), both
    in schema.json and in the names of the .npy files, and stamps each entry with the time.
    Ids are renumbered in order of first appearance (a bijection, so shared references stay
    shared) and every entry gets a fixed time and order.
    """
    with zipfile.ZipFile(path) as src:
        entries = {info.filename: src.read(info) for info in src.infolist()}
    numbers: dict[bytes, bytes] = {}

    def renumber(match: re.Match) -> bytes:
        new = numbers.setdefault(match.group(2), str(len(numbers) + 1).encode())
        return match.group(1) + new

    entries["schema.json"] = _OBJECT_ID.sub(renumber, entries["schema.json"])
    renamed = {}
    for name, data in entries.items():
        stem, dot, ext = name.partition(".")
        if ext == "npy" and stem.encode() in numbers:
            name = numbers[stem.encode()].decode() + dot + ext
        renamed[name] = data
    with zipfile.ZipFile(path, "w") as dst:
        for name in sorted(renamed):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, renamed[name], compresslevel=6)


def meta_path(model_path: Path) -> Path:
    return model_path.with_suffix(".json")


def save(model, path: Path, metadata: dict) -> dict:
    """Write the archive and its metadata atomically; return the metadata as written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # ZIP_DEFLATED: the default stored archive is ~190 MB, compressed ~9 MB.
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".skops.tmp")
    os.close(fd)
    try:
        sio.dump(model, tmp, compression=zipfile.ZIP_DEFLATED)
        _normalize_zip(Path(tmp))
        digest = sha256_of(Path(tmp))
        created = build_time()
        meta = {
            "version": metadata.get("version") or f"{created:%Y%m%dT%H%M%SZ}-{digest[:8]}",
            "created": created.isoformat(timespec="seconds"),
            "sha256": digest,
            "size_bytes": Path(tmp).stat().st_size,
            **{k: v for k, v in metadata.items() if k != "version"},
        }
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; images read it as another user
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    meta_tmp = meta_path(path).with_suffix(".json.tmp")
    meta_tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    os.replace(meta_tmp, meta_path(path))
    return meta


def read_metadata(path: Path) -> dict:
    mpath = meta_path(Path(path))
    try:
        return json.loads(mpath.read_text())
    except FileNotFoundError:
        raise ModelError(f"{mpath} is missing: a model archive needs its metadata (sha256)") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{mpath} is not valid JSON: {exc}") from None


def untrusted(types: list[str]) -> list[str]:
    return [t for t in types if not t.startswith(TRUSTED_MODULES) and t not in TRUSTED_TYPES]


def load(path: Path):
    """Return ``(model, metadata)``, checking the hash and the types first."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"no model at {path}; train one with `mlapi train`")
    return _checked_load(path, read_metadata(path), str(path))


def load_bytes(archive: bytes, meta: dict):
    """``load`` for an archive fetched from the model registry (same hash and type checks)."""
    name = f"model {meta.get('version', '?')}"
    with tempfile.NamedTemporaryFile(suffix=".skops") as tmp:
        tmp.write(archive)
        tmp.flush()
        return _checked_load(Path(tmp.name), meta, name)


def _checked_load(path: Path, meta: dict, name: str):
    digest = sha256_of(path)
    if digest != meta.get("sha256"):
        raise ModelError(f"{name}: sha256 {digest[:12]}… does not match its metadata "
                         f"({str(meta.get('sha256'))[:12]}…); refusing a changed archive")
    try:
        types = sio.get_untrusted_types(file=path)
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ModelError(f"{name} is not a skops archive: {exc}") from None
    bad = untrusted(types)
    if bad:
        raise ModelError(f"{name} holds types outside scikit-learn/NumPy/SciPy: {', '.join(bad)}")
    model = sio.load(path, trusted=types)
    # Steps whose weights come from an installed package: the package must be the fitted one.
    for step in embeddings_in(model):
        try:
            step.check()
        except EmbeddingMismatch as exc:
            raise ModelError(f"{name}: {exc}") from None
    return model, meta
