"""The dev loop's files, checked without a cluster: skaffold.yaml against its schema and the
chart, the kind and gateway configs against each other, the Makefile targets' tool checks,
and the GitHub workflow against its schema. The loop itself runs in the workflow's kind job."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from .chart.conftest import CHART, helm_bin

ROOT = Path(__file__).resolve().parent.parent
SKAFFOLD_SCHEMA = ROOT / "tests" / "schemas" / "skaffold-v4beta14.json"  # vendored: see its README


@pytest.fixture(scope="module")
def skaffold() -> dict:
    return yaml.safe_load((ROOT / "skaffold.yaml").read_text())


def test_skaffold_config_matches_its_schema(skaffold):
    schema = json.loads(SKAFFOLD_SCHEMA.read_text())
    assert skaffold["apiVersion"] == "skaffold/v4beta14"
    jsonschema.Draft7Validator(schema).validate(skaffold)


def test_one_artifact_per_image_built_from_the_repository_root(skaffold):
    artifacts = {a["image"]: a for a in skaffold["build"]["artifacts"]}
    assert set(artifacts) == {"mlapi-api", "mlapi-worker", "mlapi-feedback"}
    for image, artifact in artifacts.items():
        assert artifact["context"] == "."
        dockerfile = artifact["docker"]["dockerfile"]
        assert dockerfile == f"images/{image.removeprefix('mlapi-')}/Dockerfile"
        assert (ROOT / dockerfile).is_file()


def value_paths(tree: dict, prefix: str = "") -> set[str]:
    paths = set()
    for key, value in tree.items():
        paths.add(prefix + key)
        if isinstance(value, dict):
            paths |= value_paths(value, prefix + key + ".")
    return paths


def test_helm_release_sets_each_image_from_its_artifact(skaffold):
    (release,) = skaffold["deploy"]["helm"]["releases"]
    assert (ROOT / release["chartPath"]).resolve() == CHART
    assert all((ROOT / f).is_file() for f in release["valuesFiles"])
    templates = release["setValueTemplates"]
    known = value_paths(yaml.safe_load((CHART / "values.yaml").read_text()))
    assert set(templates) <= known, set(templates) - known
    # skaffold names an artifact's template variables with "_" for every "-" in its image.
    for image in (a["image"] for a in skaffold["build"]["artifacts"]):
        component = image.removeprefix("mlapi-")
        var = image.replace("-", "_")
        assert templates[f"{component}.image.repository"] == "{{.IMAGE_REPO_" + var + "}}"
        assert templates[f"{component}.image.tag"] == "{{.IMAGE_TAG_" + var + "}}"
        # IMAGE_REPO is a whole reference: the chart must not put its registry in front.
        assert templates[f"{component}.image.registry"] == ""


def test_profiles_are_commented_and_cover_kind_and_a_registry(skaffold):
    names = [p["name"] for p in skaffold["profiles"]]
    assert names == ["kind", "registry"]
    kind, registry = skaffold["profiles"]
    assert kind["build"]["local"]["push"] is False and registry["build"]["local"]["push"] is True
    lines = (ROOT / "skaffold.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^  - name: ", line) and "profiles:" in "\n".join(lines[:i]):
            assert lines[i - 1].strip().startswith("#"), f"profile without a comment: {line}"


def test_port_forward_targets_the_api_service_the_dev_values_render(skaffold):
    (forward,) = skaffold["portForward"]
    (release,) = skaffold["deploy"]["helm"]["releases"]
    rendered = subprocess.run(
        [helm_bin(), "template", release["name"], str(CHART), "-n", release["namespace"],
         *sum((["-f", str(ROOT / f)] for f in release["valuesFiles"]), [])],
        capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    service = services[forward["resourceName"]]
    assert forward["port"] in [p["port"] for p in service["spec"]["ports"]]
    assert forward["namespace"] == release["namespace"]
    (route,) = [d for d in docs if d["kind"] == "HTTPRoute"]
    gateway = next(d for d in yaml.safe_load_all((ROOT / "deploy/kind/gateway.yaml").read_text())
                   if d["kind"] == "Gateway")
    assert {"name": gateway["metadata"]["name"],
            "namespace": gateway["metadata"]["namespace"]} in route["spec"]["parentRefs"]


def test_the_gateway_node_port_is_the_one_kind_maps_to_localhost():
    cluster = yaml.safe_load((ROOT / "deploy/kind/cluster.yaml").read_text())
    mappings = cluster["nodes"][0]["extraPortMappings"]
    proxy = next(d for d in yaml.safe_load_all((ROOT / "deploy/kind/gateway.yaml").read_text())
                 if d["kind"] == "EnvoyProxy")
    service = proxy["spec"]["provider"]["kubernetes"]["envoyService"]
    assert service["type"] == "NodePort"
    node_port = service["patch"]["value"]["spec"]["ports"][0]["nodePort"]
    assert {"containerPort": node_port, "hostPort": 8080} == {
        k: v for k, v in mappings[0].items() if k in ("containerPort", "hostPort")}
    # The chart admits the gateway's proxies to the API (networkPolicy.gatewayNamespace, used
    # when httpRoute.enabled and networkPolicy.apiFrom is empty, the defaults).
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["networkPolicy"]["apiFrom"] == []
    assert values["networkPolicy"]["gatewayNamespace"] == proxy["metadata"]["namespace"]


@pytest.mark.parametrize("target, tool", [
    ("kind-up", "kind"), ("kind-down", "kind"), ("dev", "skaffold"),
])
def test_make_targets_name_the_missing_tool_in_one_line(tmp_path, target, tool):
    # A PATH with make and a shell but none of the cluster tools (helm and kubectl come from
    # .tools/bin when tools/fetch-helm.sh has run, so kind and skaffold are the ones to miss).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("make", "bash", "sh", "env", "grep"):
        found = shutil.which(name)
        assert found, name
        (bin_dir / name).symlink_to(found)
    env = {**os.environ, "PATH": str(bin_dir)}
    done = subprocess.run(["make", "-s", "-C", str(ROOT), target], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode != 0
    first = done.stderr.splitlines()[0]
    assert first.startswith(f"missing {tool}: install ") and "http" in first, done.stderr


def test_the_github_workflow_matches_its_schema():
    tool = ROOT / ".venv" / "bin" / "check-jsonschema"
    command = [str(tool)] if tool.exists() else ["check-jsonschema"]
    done = subprocess.run([*command, "--builtin-schema", "vendor.github-workflows",
                           str(ROOT / ".github" / "workflows" / "ci.yml")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_workflow_runs_what_the_issue_asks():
    workflow = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    steps = {name: "\n".join(s.get("run", "") + s.get("uses", "") for s in job["steps"])
             for name, job in workflow["jobs"].items()}
    assert "make test" in steps["test"]
    assert "make chart-test" in steps["chart"] and "helm package" in steps["chart"]
    assert "make images" in steps["images"] and "make image-test" in steps["images"]
    kind = steps["kind"]
    for needed in ("make kind-up", "skaffold run -p kind", "pytest k8s-tests", "make load",
                   "actions/upload-artifact"):
        assert needed in kind, needed
