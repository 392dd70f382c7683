"""Shared fixtures for the chart tests: the real helm binary, cached renders, object helpers.

Every values case (the chart defaults and each ci/*.yaml) is rendered once per session;
`render()` caches by its arguments, so failing-render cases are cheap too.
"""

from __future__ import annotations

import copy
import functools
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "mlapi"
SUBCHARTS = [CHART / "charts" / "redis", CHART / "charts" / "kafka"]
CI_DIR = CHART / "ci"
CI_FILES = sorted(p.name for p in CI_DIR.glob("*.yaml"))
# "defaults": no values file at all; the rest: one ci/*.yaml each.
CASES = ["defaults", *CI_FILES]
RELEASE = "mlapi"
NAMESPACE = "mlapi"
# Render arguments a values file needs beyond -f (what `helm install` finds in the cluster).
EXTRA_ARGS = {"with-keda-values.yaml": ("--api-versions", "keda.sh/v1alpha1"),
              "with-keda-external-kafka-values.yaml": ("--api-versions", "keda.sh/v1alpha1"),
              "with-mtls-values.yaml": ("--api-versions", "keda.sh/v1alpha1")}

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
CRD_KINDS = {"HTTPRoute", "ScaledObject", "TriggerAuthentication", "ServiceMonitor",
             "PrometheusRule"}


@functools.cache
def helm_bin() -> str:
    """tools/fetch-helm.sh puts helm in .tools/bin when missing and prints its directory."""
    out = subprocess.run([str(ROOT / "tools" / "fetch-helm.sh")], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.strip().splitlines()[-1]
    return str(Path(out) / "helm")


def run_helm(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([helm_bin(), *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout)


@dataclass
class Render:
    args: tuple
    rc: int
    stdout: str
    stderr: str
    docs: list = field(default_factory=list)

    def ok(self) -> Render:
        assert self.rc == 0, f"helm template {' '.join(self.args)} failed:\n{self.stderr}"
        return self

    def of_kind(self, kind: str) -> list[dict]:
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind: str, name: str) -> dict | None:
        return next((d for d in self.docs if d["kind"] == kind and d["metadata"]["name"] == name),
                    None)

    def names(self, kind: str) -> set[str]:
        return {d["metadata"]["name"] for d in self.of_kind(kind)}


@functools.cache
def render(values: tuple[str, ...] = (), sets: tuple[str, ...] = (),
           extra: tuple[str, ...] = (), chart: str = str(CHART), release: str = RELEASE) -> Render:
    args = ["template", release, chart, "--namespace", NAMESPACE]
    for v in values:
        args += ["-f", v]
    for s in sets:
        args += ["--set", s]
    args += list(extra)
    proc = run_helm(*args)
    docs = []
    if proc.returncode == 0:
        docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    return Render(tuple(args), proc.returncode, proc.stdout, proc.stderr, docs)


def case_args(case: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    values = () if case == "defaults" else (str(CI_DIR / case),)
    return values, EXTRA_ARGS.get(case, ())


def render_case(case: str, sets: tuple[str, ...] = (), release: str = RELEASE) -> Render:
    values, extra = case_args(case)
    return render(values, sets, extra, release=release)


def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


@functools.cache
def _chart_values() -> dict:
    return yaml.safe_load((CHART / "values.yaml").read_text()) or {}


def case_file_values(case: str) -> dict:
    if case == "defaults":
        return {}
    return yaml.safe_load((CI_DIR / case).read_text()) or {}


def effective_values(case: str) -> dict:
    """values.yaml overlaid with the case's file (what the templates see, subchart keys aside)."""
    return deep_merge(_chart_values(), case_file_values(case))


def dig(d: dict, path: str, default=None):
    for part in path.split("."):
        if not isinstance(d, dict) or part not in d:
            return default
        d = d[part]
    return d


@dataclass
class PodTemplate:
    owner_kind: str
    owner_name: str
    metadata: dict
    spec: dict
    owner: dict

    @property
    def labels(self) -> dict:
        return self.metadata.get("labels") or {}

    @property
    def is_helm_test(self) -> bool:
        return "helm.sh/hook" in (self.metadata.get("annotations") or {}) and \
            "test" in self.metadata["annotations"]["helm.sh/hook"]

    @property
    def containers(self) -> list[dict]:
        return list(self.spec.get("containers") or [])

    @property
    def init_containers(self) -> list[dict]:
        return list(self.spec.get("initContainers") or [])

    @property
    def all_containers(self) -> list[dict]:
        return self.init_containers + self.containers

    def ports(self) -> list[dict]:
        return [p for c in self.containers for p in c.get("ports") or []]

    @property
    def id(self) -> str:
        return f"{self.owner_kind}/{self.owner_name}"


def pod_templates(docs: list[dict]) -> list[PodTemplate]:
    out = []
    for d in docs:
        kind, name = d["kind"], d["metadata"]["name"]
        if kind == "Pod":
            out.append(PodTemplate(kind, name, d["metadata"], d["spec"], d))
        elif kind == "CronJob":
            t = d["spec"]["jobTemplate"]["spec"]["template"]
            out.append(PodTemplate(kind, name, t.get("metadata") or {}, t["spec"], d))
        elif kind in WORKLOAD_KINDS:
            t = d["spec"]["template"]
            out.append(PodTemplate(kind, name, t.get("metadata") or {}, t["spec"], d))
    return out


@pytest.fixture(scope="session")
def helm() -> str:
    return helm_bin()


@pytest.fixture(params=CASES)
def case(request) -> str:
    return request.param


@pytest.fixture
def rendered(case) -> Render:
    return render_case(case).ok()
