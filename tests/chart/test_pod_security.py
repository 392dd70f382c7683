"""Pod Security Standards "restricted" plus the house rules, on every pod of every render."""

from __future__ import annotations

import re

import pytest

from .conftest import dig, effective_values, pod_templates, render_case

pytestmark = pytest.mark.chart

# Long-running containers without probes, each with the reason it has none (see the templates).
PROBELESS = {
    ("Deployment", "mlapi-feedback", "retrain"):
        "retrain sidecar: no server to probe; a failed run is retried at the next tick",
}


def _pod_sc(pt):
    return pt.spec.get("securityContext") or {}


def _sc(c):
    return c.get("securityContext") or {}


def check_run_as_non_root(pt, c):
    eff = _sc(c).get("runAsNonRoot", _pod_sc(pt).get("runAsNonRoot"))
    return None if eff is True else f"runAsNonRoot is {eff!r}"


def check_run_as_user_not_root(pt, c):
    for where, sc in (("pod", _pod_sc(pt)), ("container", _sc(c))):
        for key in ("runAsUser", "runAsGroup"):
            if key in sc and (not isinstance(sc[key], int) or sc[key] == 0):
                return f"{where} {key} is {sc[key]!r}"
    eff = _sc(c).get("runAsUser", _pod_sc(pt).get("runAsUser"))
    return None if isinstance(eff, int) and eff > 0 else f"runAsUser is {eff!r} (numeric, not 0)"


def check_seccomp(pt, c):
    eff = (_sc(c).get("seccompProfile") or _pod_sc(pt).get("seccompProfile") or {}).get("type")
    return None if eff == "RuntimeDefault" else f"seccompProfile is {eff!r}"


def check_no_privilege_escalation(pt, c):
    sc = _sc(c)
    if sc.get("privileged"):
        return "privileged"
    return None if sc.get("allowPrivilegeEscalation") is False else "allowPrivilegeEscalation"


def check_capabilities(pt, c):
    caps = _sc(c).get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or []):
        return f"capabilities.drop is {caps.get('drop')!r}"
    return f"capabilities.add is {caps['add']!r}" if caps.get("add") else None


def check_read_only_root(pt, c):
    return None if _sc(c).get("readOnlyRootFilesystem") is True else "readOnlyRootFilesystem"


def check_no_host_access(pt, c):
    for key in ("hostNetwork", "hostPID", "hostIPC", "hostUsers"):
        if pt.spec.get(key) is True and key != "hostUsers":
            return key
    for v in pt.spec.get("volumes") or []:
        if "hostPath" in v:
            return f"hostPath volume {v['name']}"
    for p in c.get("ports") or []:
        if p.get("hostPort"):
            return f"hostPort {p['hostPort']}"
    return None


def check_resources(pt, c):
    res = c.get("resources") or {}
    missing = [k for k in ("requests.cpu", "requests.memory", "limits.memory")
               if not (res.get(k.split(".")[0]) or {}).get(k.split(".")[1])]
    return f"missing {missing}" if missing else None


def check_probes(pt, c):
    if pt.owner_kind in {"CronJob", "Job"} or pt.is_helm_test or c in pt.init_containers:
        return None
    if (pt.owner_kind, pt.owner_name, c["name"]) in PROBELESS:
        return None
    missing = [p for p in ("livenessProbe", "readinessProbe") if not c.get(p)]
    return f"missing {missing}" if missing else None


def check_no_sa_token(pt, c):
    v = pt.spec.get("automountServiceAccountToken")
    return None if v is False else f"automountServiceAccountToken is {v!r}"


def check_pull_policy(pt, c):
    v = c.get("imagePullPolicy")
    return None if v == "IfNotPresent" else f"imagePullPolicy is {v!r}"


def check_image_pinned(pt, c):
    image = c.get("image", "")
    if "@sha256:" in image:
        return None
    m = re.fullmatch(r"[^:@\s]+(?::\d+)?/[^:@\s]+:([\w][\w.-]*)", image)
    if not m or m.group(1) == "latest":
        return f"image {image!r} has no explicit tag"
    return "bitnami image" if "bitnami" in image.lower() else None


def check_labels(pt, c):
    missing = [k for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance",
                           "app.kubernetes.io/component") if not pt.labels.get(k)]
    return f"pod labels missing {missing}" if missing else None


CHECKS = {f.__name__.removeprefix("check_"): f for f in [
    check_run_as_non_root, check_run_as_user_not_root, check_seccomp,
    check_no_privilege_escalation, check_capabilities, check_read_only_root,
    check_no_host_access, check_resources, check_probes, check_no_sa_token, check_pull_policy,
    check_image_pinned, check_labels,
]}


@pytest.mark.parametrize("check", CHECKS)
def test_every_container(case, check):
    pts = pod_templates(render_case(case).ok().docs)
    assert pts
    problems = [f"{pt.id}/{c['name']}: {msg}"
                for pt in pts for c in pt.all_containers
                if (msg := CHECKS[check](pt, c))]
    assert not problems, "\n".join(problems)


def test_checks_catch_violations():
    """Each check rejects a container that breaks its rule (so the table cannot pass vacuously)."""
    from .conftest import PodTemplate
    bad_pod = PodTemplate("Deployment", "x", {"labels": {}},
                          {"hostNetwork": True, "securityContext": {"runAsUser": 0},
                           "containers": []}, {})
    bad = {"name": "c", "image": "docker.io/bitnami/redis", "imagePullPolicy": "Always",
           "securityContext": {"privileged": True, "capabilities": {"add": ["NET_ADMIN"]}}}
    for name, check in CHECKS.items():
        assert check(bad_pod, bad), name


def test_probeless_table_is_current():
    pts = pod_templates(render_case("defaults").ok().docs)
    present = {(pt.owner_kind, pt.owner_name, c["name"]) for pt in pts for c in pt.containers}
    for key in PROBELESS:
        assert key in present, f"PROBELESS entry {key} no longer rendered; drop it"


def test_service_accounts_do_not_automount(case):
    sas = render_case(case).ok().of_kind("ServiceAccount")
    assert sas
    assert all(sa.get("automountServiceAccountToken") is False for sa in sas)


def test_pods_use_their_own_service_account(case):
    """Each pod runs as a rendered ServiceAccount, or one the values name and do not create."""
    r = render_case(case).ok()
    names = r.names("ServiceAccount")
    values = effective_values(case)
    brought = {dig(values, f"{c}.serviceAccount.name") for c in ("api", "worker", "feedback")
               if dig(values, f"{c}.serviceAccount.create") is False}
    for pt in pod_templates(r.docs):
        if pt.is_helm_test:
            continue
        assert pt.spec.get("serviceAccountName") in names | brought, pt.id
        assert pt.spec.get("serviceAccountName") != "default", pt.id


def test_no_bitnami_anywhere(case):
    r = render_case(case).ok()
    assert "bitnami" not in r.stdout.lower()
    assert "docker.io/bitnami" not in r.stdout


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet", "CronJob", "Pod"])
def test_object_labels(case, kind):
    for d in render_case(case).ok().of_kind(kind):
        labels = d["metadata"].get("labels") or {}
        for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance",
                  "app.kubernetes.io/component", "app.kubernetes.io/managed-by",
                  "helm.sh/chart", "app.kubernetes.io/part-of"):
            assert labels.get(k), f"{kind}/{d['metadata']['name']} lacks {k}"
