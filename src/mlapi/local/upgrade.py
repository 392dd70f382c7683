"""`mlapi run`'s first start: serve a fast model at once, train the multilingual one meanwhile.

Training the multilingual model on a fresh machine takes minutes (embedding every text, the
corpus's and its shipped Spanish translation's), and a newcomer should not wait that long for
a first answer.
So the stack trains the `fast` kind on English rows (~15 s), serves it, and trains the
`multilingual` kind in a background process. When that finishes it is stored in the registry
and promoted if it is not worse on English (it is the only one that knows Spanish); the workers
swap to it between two batches, as after a retraining. The next `mlapi run` starts from it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from ..model.gate import Score, gate

MULTILINGUAL = "multilingual.skops"
# The multilingual model may trade this much English macro-F1 for Spanish before the gate
# (model/gate.py, the one `mlapi retrain` uses) refuses it; English is the one set both kinds know.
MARGIN = 0.01


class Upgrade:
    """The background training process and, once it exits, the promotion."""

    def __init__(self, settings, models_dir: Path, log_path: Path, env: dict[str, str],
                 train_args: tuple[str, ...] = ()):
        self.settings, self.output, self.log_path = settings, models_dir / MULTILINGUAL, log_path
        self.env, self.train_args = env, train_args
        self.process: subprocess.Popen | None = None
        self.started = 0.0

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mlapi", "train", "--kind", "multilingual",
                 "--output", str(self.output), *self.train_args], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=self.env, start_new_session=True)
        self.started = time.monotonic()

    def poll(self) -> str | None:
        """None while training; then one line saying what happened (once)."""
        if self.process is None or self.process.poll() is None:
            return None
        code, self.process = self.process.returncode, None
        minutes = (time.monotonic() - self.started) / 60
        if code != 0:
            return (f"[yellow]The multilingual model failed to train (exit {code}, "
                    f"{minutes:.1f} min); still serving the fast one. See {self.log_path}")
        return self.promote(minutes)

    def promote(self, minutes: float) -> str:
        from ..model import artifact
        from ..redis_store import Registry

        meta = artifact.read_metadata(self.output)
        registry = Registry(self.settings)
        try:
            champion = registry.champion()
            old = registry.meta(champion) if champion else None
            registry.add(meta, self.output.read_bytes())
            en = meta["metrics"]["macro_f1"]
            old_en = (old or {}).get("metrics", {}).get("macro_f1", 0.0)
            es = meta["metrics"].get("by_language", {}).get("es", {}).get("macro_f1")
            scores = f"English macro-F1 {en:.3f} (was {old_en:.3f})" + (
                f", Spanish {es:.3f}" if es is not None else "")
            chosen = (old or {}).get("kind", "fast")
            if chosen != "fast":
                # Someone promoted another kind meanwhile (an encoder model, say): theirs stays.
                return (f"[yellow]Trained the multilingual model {meta['version']} in "
                        f"{minutes:.1f} min but kept the champion, the {chosen} model promoted "
                        f"meanwhile: {scores}; `mlapi models promote {meta['version']}` serves it")
            decision = gate({"English held-out": Score("macro_f1", old_en, en)}, MARGIN)
            if not decision.promote:
                return (f"[yellow]Trained the multilingual model {meta['version']} in "
                        f"{minutes:.1f} min but kept the champion: {scores}")
            registry.promote(meta["version"])
        finally:
            registry.close()
        return (f"[green]Trained the multilingual model {meta['version']} in {minutes:.1f} min "
                f"and promoted it: {scores}; the workers swap to it within seconds")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
