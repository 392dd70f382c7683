#!/usr/bin/env python3
"""Rewrites the values table of charts/mlapi/README.md from the `# --` comments of values.yaml.

Usage: tools/values-table.py [--check]. Each table sits between its VALUES-TABLE markers;
--check exits 1 when the README is out of step (tests/chart runs the same check).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

CHART = Path(__file__).resolve().parent.parent / "charts" / "mlapi"
# The parent's values, then each subchart's under its name (set them as `redis.<key>`).
TABLES = {"mlapi": ("values.yaml", ""), "redis": ("charts/redis/values.yaml", "redis."),
          "kafka": ("charts/kafka/values.yaml", "kafka.")}


def rows(text: str) -> list[tuple[str, str, str, str]]:
    """(key path, default, description, example) for every documented key, in file order."""
    defaults = yaml.safe_load(text)
    out, stack, doc, example = [], [], [], ""
    for line in text.splitlines():
        comment = re.match(r"^\s*# -- ?(.*)$", line)
        cont = re.match(r"^\s*# ?(.*)$", line) if doc else None
        ex = re.match(r"^\s*# @example (.*)$", line)
        key = re.match(r"^(\s*)([A-Za-z0-9_]+):(.*)$", line)
        if comment:
            doc, example = [comment.group(1)], ""
        elif ex:
            example = ex.group(1)
        elif cont and not ex:
            doc.append(cont.group(1))
        elif key:
            depth = len(key.group(1)) // 2
            stack = stack[:depth] + [key.group(2)]
            if doc:
                value = defaults
                for part in stack:
                    value = value[part]
                default = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
                default = default.removesuffix("\n...").removesuffix("...").strip()
                out.append((".".join(stack), default, " ".join(doc), example))
            doc, example = [], ""
        elif not line.strip().startswith("#"):
            doc = []
    return out


def table(text: str, prefix: str = "", exclude: frozenset = frozenset()) -> str:
    lines = ["| key | default | description | example |", "|---|---|---|---|"]
    for path, default, doc, example in rows(text):
        if prefix and (path == "global" or path.startswith("global.")
                       or prefix + path in exclude):
            continue  # global is set once, and keys the parent documents are in its table
        cells = [f"`{prefix}{path}`", f"`{default}`", doc.replace("|", "\\|"),
                 f"`{example}`" if example else ""]
        lines.append("| " + " | ".join(c.replace("`|`", "`\\|`") for c in cells) + " |")
    return "\n".join(lines)


def main() -> int:
    readme = CHART / "README.md"
    text = new = readme.read_text()
    parent = frozenset(row[0] for row in rows((CHART / "values.yaml").read_text()))
    for name, (path, prefix) in TABLES.items():
        begin, end = f"<!-- VALUES-TABLE:{name}:BEGIN -->", f"<!-- VALUES-TABLE:{name}:END -->"
        start, stop = new.index(begin) + len(begin), new.index(end)
        body = table((CHART / path).read_text(), prefix, parent)
        new = new[:start] + "\n" + body + "\n" + new[stop:]
    if "--check" in sys.argv:
        if new != text:
            print(f"{readme} is out of step with values.yaml: run tools/values-table.py")
            return 1
        return 0
    readme.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
