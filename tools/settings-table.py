#!/usr/bin/env python3
"""Rewrites the settings table of docs/settings.md from src/mlapi/config.py.

Each ``Settings`` field gives a row: ``MLAPI_<FIELD>``, its default (or the field's
``metadata["default"]`` where the value is computed), and the comment above it. A ``# --- x ---``
comment starts a section. Usage: tools/settings-table.py [--check]; --check exits 1 when the page
is out of step (tests/test_docs.py runs the same check).
"""

from __future__ import annotations

import re
import sys
from dataclasses import MISSING, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from mlapi import config  # noqa: E402  (after the path above)

CONFIG = ROOT / "src" / "mlapi" / "config.py"
PAGE = ROOT / "docs" / "settings.md"
BEGIN, END = "<!-- SETTINGS-TABLE:BEGIN (tools/settings-table.py) -->", "<!-- SETTINGS-TABLE:END -->"


def entries() -> list[tuple[str, str, list[str]]]:
    """("section", title, []) and ("field", name, comment lines), in the order of config.py."""
    out, pending, inside = [], [], False
    for line in CONFIG.read_text().splitlines():
        if line.startswith("class Settings"):
            inside = True
            continue
        if not inside:
            continue
        if line.lstrip().startswith(("@", "def ")):
            break  # past the fields
        section = re.match(r"^    # --- (.+?) -+$", line)
        comment = re.match(r"^    # ?(.*)$", line)
        declared = re.match(r"^    ([a-z_][a-z0-9_]*): ", line)
        if section:
            out.append(("section", section.group(1), []))
            pending = []
        elif comment:
            pending.append(comment.group(1))
        elif declared:
            out.append(("field", declared.group(1), pending))
            pending = []
        elif not line.strip():
            pending = []
    return out


def shown(f) -> str:
    if "default" in f.metadata:
        return f.metadata["default"]
    value = f.default if f.default is not MISSING else f.default_factory()
    if value is None:
        return "*(unset)*"
    if value == "":
        return "*(empty)*"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def table() -> str:
    by_name = {f.name: f for f in fields(config.Settings)}
    listed = [name for kind, name, _ in entries() if kind == "field"]
    if listed != list(by_name):
        raise SystemExit(f"config.py: fields read {listed} differ from Settings' {list(by_name)}")
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for kind, name, notes in entries():
        if kind == "section":
            lines.append(f"| *{name}* | | |")
            continue
        if not notes:
            raise SystemExit(f"config.py: Settings.{name} has no comment to document it")
        meaning = " ".join(notes).replace("|", "\\|")
        lines.append(f"| `MLAPI_{name.upper()}` | {shown(by_name[name])} | {meaning} |")
    return "\n".join(lines)


def main() -> int:
    text = PAGE.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    new = text[:start] + "\n" + table() + "\n" + text[end:]
    if "--check" in sys.argv:
        if new != text:
            print(f"{PAGE} is out of step with config.py: run `make settings-docs`",
                  file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
