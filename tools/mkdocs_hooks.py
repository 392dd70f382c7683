"""MkDocs hook: the site's home page is the README, so the two never drift apart.

docs/index.md is a placeholder; at build time its Markdown is the README's, with the README's
links into docs/ made relative to the site (docs/api.md -> api.md). mkdocs --strict then checks
those links and their anchors like any page's.
"""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.src_uri != "index.md":
        return markdown
    return re.sub(r"\]\(docs/", "](", README.read_text(encoding="utf-8"))
