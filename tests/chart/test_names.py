"""Every name fits its kind's limit for any release name Helm accepts, suffixes kept whole."""

from __future__ import annotations

import re

import pytest

from .conftest import CASES, NAMESPACE, render_case

pytestmark = pytest.mark.chart

# Helm refuses release names over 53 characters; this one is as long as it allows.
LONGEST = "a-release-name-as-long-as-helm-allows-fifty-three-chr"
assert len(LONGEST) == 53

# A Service's name is a DNS label; a StatefulSet's or CronJob's gets 11 characters appended by
# its controller to make a label value (of at most 63); the rest are DNS subdomains.
LIMITS = {"Service": 63, "StatefulSet": 52, "CronJob": 52}
DEFAULT_LIMIT = 253
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

# The suffix each mlapi workload's name ends with, whatever the prefix is cut to.
WORKLOAD_SUFFIXES = {("Deployment", "api"), ("Deployment", "worker"), ("Deployment", "feedback"),
                     ("CronJob", "retrain")}

LONG_NAMES = {
    "release": {"release": LONGEST},
    "fullnameOverride": {"sets": (f"fullnameOverride={'f' * 63}",)},
    "nameOverride": {"release": LONGEST[:40], "sets": (f"nameOverride={'n' * 30}",)},
}


def _render(case, how):
    opts = LONG_NAMES[how]
    return render_case(case, sets=opts.get("sets", ()), release=opts.get("release", "mlapi")).ok()


def _labels(doc):
    yield from (doc["metadata"].get("labels") or {}).items()
    template = (doc.get("spec") or {}).get("template") or \
        (((doc.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}).get("template")
    if template:
        yield from (template["metadata"].get("labels") or {}).items()


@pytest.mark.parametrize("how", LONG_NAMES)
@pytest.mark.parametrize("case", CASES)
def test_every_name_fits_its_kind(case, how):
    r = _render(case, how)
    too_long = [f"{d['kind']}/{d['metadata']['name']} ({len(d['metadata']['name'])})"
                for d in r.docs
                if len(d["metadata"]["name"]) > LIMITS.get(d["kind"], DEFAULT_LIMIT)]
    assert not too_long, too_long
    bad_labels = [f"{d['kind']}/{d['metadata']['name']}: {k}={v}" for d in r.docs
                  for k, v in _labels(d) if len(str(v)) > 63 or not LABEL_VALUE.match(str(v))]
    assert not bad_labels, bad_labels


@pytest.mark.parametrize("how", LONG_NAMES)
def test_suffixes_stay_whole(how):
    r = _render("with-existing-secrets-values.yaml", how)  # it renders the retrain CronJob
    for kind, component in WORKLOAD_SUFFIXES:
        names = [d["metadata"]["name"] for d in r.of_kind(kind)
                 if d["metadata"]["labels"].get("app.kubernetes.io/component") == component]
        assert len(names) == 1 and names[0].endswith(f"-{component}"), (kind, component, names)
    services = {d["metadata"]["name"] for d in r.of_kind("Service")}
    assert any(n.endswith("-worker-metrics") for n in services), services
    assert any(n.endswith("-feedback-metrics") for n in services), services
    assert any(n.endswith("-kafka-headless") for n in services), services


@pytest.mark.parametrize("how", LONG_NAMES)
def test_names_in_config_and_notes_exist(how):
    """The ConfigMap's Redis and Kafka addresses name Services that are rendered."""
    r = _render("defaults", how)
    services = {d["metadata"]["name"] for d in r.of_kind("Service")}
    config = next(d for d in r.of_kind("ConfigMap") if "MLAPI_REDIS_URL" in d["data"])["data"]
    redis_host = config["MLAPI_REDIS_URL"].split("//")[1].split(":")[0]
    kafka_host = config["MLAPI_KAFKA_BOOTSTRAP"].split(":")[0]
    assert {redis_host, kafka_host} <= services, (redis_host, kafka_host, services)


def test_notes_name_the_api_service(helm):
    """NOTES.txt (shown by `helm install`) names the api Service that exists."""
    import subprocess

    from .conftest import CHART, ROOT

    out = subprocess.run([helm, "install", LONGEST, str(CHART), "--dry-run=client", "-n", NAMESPACE,
                          "--set", f"fullnameOverride={'f' * 63}"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    forwarded = re.search(r"port-forward svc/(\S+)", out.stdout).group(1)
    rendered = re.findall(r"kind: Service\nmetadata:\n  name: (\S+)", out.stdout)
    assert forwarded in rendered, (forwarded, rendered)
    assert forwarded.endswith("-api") and len(forwarded) <= 63
