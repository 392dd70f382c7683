"""Cluster access: is there one, object names of the release, readiness, exec in a pod."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

from kubernetes import client, config
from kubernetes.stream import stream

CHART = "mlapi"


def kubeconfig_files(env: Mapping[str, str], home: Path) -> list[Path]:
    """The files KUBECONFIG names (colon-separated), or ~/.kube/config when it is unset."""
    raw = env.get("KUBECONFIG", "")
    if raw.strip():
        return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]
    return [home / ".kube" / "config"]


def no_config_reason(env: Mapping[str, str], home: Path) -> str | None:
    """Why there is no cluster to talk to before asking it, or None when there may be one."""
    if env.get("KUBERNETES_SERVICE_HOST"):
        return None  # in a pod: the service account's config
    files = kubeconfig_files(env, home)
    if any(f.is_file() for f in files):
        return None
    if env.get("KUBECONFIG", "").strip():
        return f"no cluster: KUBECONFIG names no existing file ({env['KUBECONFIG']})"
    return f"no cluster: KUBECONFIG is unset and {files[0]} does not exist"


def connect(timeout: float = 5.0) -> tuple[client.ApiClient | None, str]:
    """An ApiClient for the current context and its server, or (None, why not)."""
    reason = no_config_reason(os.environ, Path.home())
    if reason:
        return None, reason
    cfg = client.Configuration()
    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
            config.load_incluster_config(client_configuration=cfg)
        else:
            files = kubeconfig_files(os.environ, Path.home())
            config.load_kube_config(config_file=os.pathsep.join(str(f) for f in files if f.is_file()),
                                    client_configuration=cfg, persist_config=False)
    except (config.ConfigException, OSError, ValueError) as exc:
        return None, f"no cluster: the kubeconfig does not load ({exc})"
    cfg.retries = 0  # the probe below fails fast; later calls get urllib3's retries back
    api = client.ApiClient(cfg)
    try:
        version = client.VersionApi(api).get_code(_request_timeout=timeout)
    except Exception as exc:  # any failure means "no usable cluster"
        api.close()
        return None, f"no cluster: the API server {cfg.host} is unreachable (timeout {timeout:g} s): {exc}"
    cfg.retries = None
    return api, f"{cfg.host} (Kubernetes {version.git_version})"


def fullname(release: str, chart: str = CHART) -> str:
    """The chart's object-name prefix (mlapi.fullname): the release alone when it contains 'mlapi'."""
    name = release if chart in release else f"{release}-{chart}"
    return name[:63].rstrip("-")


def instance_selector(release: str, component: str | None = None) -> str:
    selector = f"app.kubernetes.io/instance={release}"
    return selector + (f",app.kubernetes.io/component={component}" if component else "")


def workload_not_ready(obj) -> str | None:
    """None when a V1Deployment or V1StatefulSet has all its replicas updated and ready, else why."""
    kind = type(obj).__name__.removeprefix("V1")
    name = f"{kind} {obj.metadata.name}"
    want = obj.spec.replicas if obj.spec.replicas is not None else 1
    status = obj.status
    if status is None or (status.observed_generation or 0) < (obj.metadata.generation or 0):
        return f"{name}: spec change not yet observed"
    ready = status.ready_replicas or 0
    updated = status.updated_replicas or 0
    if updated < want or ready < want:
        return f"{name}: {ready}/{want} ready, {updated}/{want} updated"
    if kind == "Deployment" and (status.replicas or 0) > want:
        return f"{name}: {status.replicas - want} old pod(s) still terminating"
    if kind == "StatefulSet" and status.update_revision and status.current_revision != status.update_revision:
        return f"{name}: rolling to revision {status.update_revision}"
    return None


def exec_in_pod(core: client.CoreV1Api, namespace: str, pod: str, container: str, command: list[str],
                timeout: float) -> tuple[int | None, str, str]:
    """Run ``command`` in a container like ``kubectl exec``: (exit code, stdout, stderr).

    The exit code is None when the command outlived ``timeout`` (the stream is closed then).
    """
    resp = stream(core.connect_get_namespaced_pod_exec, pod, namespace, container=container,
                  command=command, stdin=False, stdout=True, stderr=True, tty=False,
                  _preload_content=False)
    out: list[str] = []
    err: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while resp.is_open() and time.monotonic() < deadline:
            resp.update(timeout=1)
            if resp.peek_stdout():
                out.append(resp.read_stdout())
            if resp.peek_stderr():
                err.append(resp.read_stderr())
        finished = not resp.is_open()
        out.append(resp.read_stdout() if resp.peek_stdout() else "")
        err.append(resp.read_stderr() if resp.peek_stderr() else "")
        code = resp.returncode if finished else None
    finally:
        resp.close()
    return code, "".join(out), "".join(err)
