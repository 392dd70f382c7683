"""charts/mlapi/README.md documents every value, and values.yaml comments every key."""

from __future__ import annotations

import re

import pytest

from .conftest import CHART

pytestmark = pytest.mark.chart

KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w.-]*|\"[^\"]+\"):(?:\s|$)")


def documented_keys() -> dict[str, bool]:
    """Every key path of values.yaml -> whether a `# --` comment documents it."""
    out, stack, comment = {}, [], []
    for line in (CHART / "values.yaml").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment.append(stripped)
            continue
        m = KEY.match(line)
        if not m or stripped.startswith("- "):
            if not stripped:
                comment = []
            continue
        indent = len(m.group("indent"))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, m.group("key").strip('"')))
        out[".".join(k for _, k in stack)] = any(c.startswith("# --") for c in comment)
        comment = []
    return out


def leaf_paths() -> list[str]:
    """Documented keys, and undocumented keys with no keys below them (true leaves)."""
    keys = documented_keys()
    leaves = []
    for path, doc in keys.items():
        if any(p.startswith(path + ".") for p in keys) and not doc:
            continue  # a section: its keys are the leaves
        if any(path.startswith(p + ".") and keys[p] for p in keys):
            continue  # inside a documented value (e.g. an example map)
        leaves.append(path)
    return leaves


def test_parser_finds_known_keys():
    keys = documented_keys()
    for k in ("api.autoscaling.maxReplicas", "global.networkPolicy.enabled",
              "feedback.retrain.resources", "tests.tokenSecretKey"):
        assert keys.get(k) is True, k
    assert "api.autoscaling" in keys and "api.autoscaling" not in leaf_paths()


@pytest.mark.parametrize("path", leaf_paths())
def test_values_key_has_comment(path):
    assert documented_keys()[path], f"{path} has no `# --` comment in values.yaml"


def test_readme_names_every_value():
    readme = CHART / "README.md"
    assert readme.exists(), "charts/mlapi/README.md is missing"
    text = readme.read_text()
    missing = [p for p in leaf_paths() if f"`{p}`" not in text]
    assert not missing, f"README.md does not name these values (in backticks): {missing}"


def test_values_tables_are_in_step_with_values_yaml():
    """The README's tables are generated (`make chart-docs`); a stale one fails here."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(CHART.parent.parent / "tools" / "values-table.py"),
                           "--check"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def test_readme_links_to_its_own_sections_resolve():
    text = (CHART / "README.md").read_text()
    anchors = {_slug(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}
    links = re.findall(r"\]\(#([^)]+)\)", text)
    assert links, "the README links to none of its sections"
    assert not [a for a in links if a not in anchors], sorted(anchors)
