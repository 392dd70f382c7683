"""The documentation: a README that fits on a page and starts with the two commands, a site
that builds with no warning (links and anchors checked), generated tables in step with their
sources, and `make help` naming every verb."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def test_readme_starts_with_the_two_commands_and_fits_on_a_page():
    text = README.read_text()
    first_block = text.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split()[:2] for line in first_block] == [["make", "run"], ["make", "test"]]
    assert len(text.encode()) < 12 * 1024, "README.md over 12 KB: move detail into docs/"


def slug(heading: str) -> str:
    """The anchor MkDocs (Python-Markdown's toc) and GitHub give a heading, for plain headings."""
    text = re.sub(r"[`*_]", lambda m: "_" if m.group() == "_" else "", heading.strip().lower())
    text = re.sub(r"[^\w\s-]", "", text)
    return re.sub(r"[\s]+", "-", text).strip("-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, flags=re.M)}


def test_the_readmes_links_lead_somewhere():
    text = re.sub(r"```.*?```", "", README.read_text(), flags=re.S)
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links, "the README links into docs/"
    broken = []
    for link in links:
        if re.match(r"^[a-z]+://", link):
            continue
        target, _, anchor = link.partition("#")
        path = (README.parent / target) if target else README
        if not path.exists():
            broken.append(f"{link}: no such file")
        elif anchor and anchor not in anchors(path):
            broken.append(f"{link}: no such heading")
    assert broken == []


def test_slug_matches_the_sites_anchors():
    assert slug("The encoder: weights, runtime, licences") == "the-encoder-weights-runtime-licences"
    assert slug("Which kind, and why the default is still `multilingual`") == \
        "which-kind-and-why-the-default-is-still-multilingual"


def test_the_site_builds_without_a_warning(tmp_path):
    # --strict turns every warning into a failure: a link to a missing page or anchor, a page
    # left out of the nav, an absolute link.
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "WARNING" not in done.stderr
    home = (tmp_path / "site" / "index.html").read_text()
    assert "make test" in home and 'href="api/"' in home  # the README, its links made relative


@pytest.mark.parametrize("tool", ["settings-table.py", "values-table.py"])
def test_generated_tables_are_in_step(tool):
    done = subprocess.run([sys.executable, str(ROOT / "tools" / tool), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_every_setting_is_documented_with_its_variable():
    from dataclasses import fields

    from mlapi.config import Settings

    page = (ROOT / "docs" / "settings.md").read_text()
    missing = [f.name for f in fields(Settings) if f"`MLAPI_{f.name.upper()}`" not in page]
    assert missing == []


def test_the_settings_check_fails_when_the_page_drifts(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("settings_table", ROOT / "tools" / "settings-table.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    page = tmp_path / "settings.md"
    page.write_text((ROOT / "docs" / "settings.md").read_text().replace("`MLAPI_BATCH_MAX`", "`MLAPI_X`"))
    monkeypatch.setattr(tool, "PAGE", page)
    monkeypatch.setattr(sys, "argv", ["settings-table.py", "--check"])
    assert tool.main() == 1
    monkeypatch.setattr(sys, "argv", ["settings-table.py"])
    assert tool.main() == 0 and "`MLAPI_BATCH_MAX`" in page.read_text()


def test_make_help_names_every_verb():
    makefile = (ROOT / "Makefile").read_text()
    phony = set(re.search(r"^\.PHONY: ((?:.*\\\n)*.*)$", makefile, flags=re.M).group(1)
                .replace("\\\n", " ").split())
    done = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    listed = {line.split()[1] for line in done.stdout.splitlines() if line.startswith("  make ")}
    assert listed == phony


def test_every_test_file_is_on_the_tests_page():
    page = (ROOT / "docs" / "testing.md").read_text()
    missing = [p.name for p in sorted((ROOT / "tests").glob("test_*.py")) if f"`{p.name}`" not in page]
    assert missing == []
