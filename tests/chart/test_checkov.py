"""checkov on the rendered chart: every failing check is one README.md explains (section checkov)."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from .conftest import CHART, ROOT, render_case

pytestmark = pytest.mark.chart

CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"
CHECKOV_CASES = ["defaults", "with-existing-secrets-values.yaml"]


@pytest.fixture(scope="module")
def checkov_failed(tmp_path_factory) -> dict[str, dict[str, set[str]]]:
    if not CHECKOV.exists():
        pytest.skip(f"checkov is not installed at {CHECKOV} (the Makefile target installs it)")
    d = tmp_path_factory.mktemp("checkov")
    procs = {}
    for case in CHECKOV_CASES:
        path = d / f"{case.removesuffix('.yaml')}.yaml"
        path.write_text(render_case(case).ok().stdout)
        procs[case] = subprocess.Popen(
            [str(CHECKOV), "--skip-download", "--quiet", "--compact", "-o", "json",
             "--framework", "kubernetes", "-f", str(path)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=d)
    out = {}
    for case, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode in (0, 1), stderr
        reports = json.loads(stdout)
        reports = reports if isinstance(reports, list) else [reports]
        failed: dict[str, set[str]] = {}
        for rep in reports:
            assert rep["summary"]["parsing_errors"] == 0, rep["summary"]
            assert rep["summary"]["resource_count"] > 10, rep["summary"]
            for c in rep["results"]["failed_checks"]:
                failed.setdefault(c["check_id"], set()).add(c["resource"])
        out[case] = failed
    return out


def _checkov_section() -> str:
    text = (CHART / "README.md").read_text()
    m = re.search(r"(?mi)^(#+)[^\n]*checkov[^\n]*\n", text)
    assert m, "README.md has no checkov section"
    level = len(m.group(1))
    rest = text[m.end():]
    end = re.search(rf"(?m)^#{{1,{level}}} ", rest)
    return rest[:end.start()] if end else rest


@pytest.mark.parametrize("case", CHECKOV_CASES)
def test_checkov_failures_are_documented(checkov_failed, case):
    failed = checkov_failed[case]
    section = _checkov_section()
    missing = {cid: sorted(res) for cid, res in failed.items()
               if not re.search(rf"\b{re.escape(cid)}\b", section)}
    assert not missing, f"checkov checks failing but not explained in README.md: {missing}"


def test_checkov_passes_the_basics(checkov_failed):
    """Checks the chart must never fail (no waiver makes sense for them)."""
    never = {"CKV_K8S_1", "CKV_K8S_16", "CKV_K8S_17", "CKV_K8S_19", "CKV_K8S_20", "CKV_K8S_22",
             "CKV_K8S_23", "CKV_K8S_25", "CKV_K8S_28", "CKV_K8S_37", "CKV_K8S_38",
             "CKV_K8S_13", "CKV_K8S_12", "CKV_K8S_10"}
    for case, failed in checkov_failed.items():
        assert not never & set(failed), (case, never & set(failed))
