"""Fixtures of the cluster checks: the cluster (or a skip saying why not), the release, its
admin token and the URL of its API through the gateway.

Every test here uses `cluster`, which connects once per session; without a kubeconfig, or when
the API server does not answer within 5 s, every test skips with that reason.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from mlapi_k8s import PortForward, env_seconds, find_tool, run_load, wait_until
from mlapi_k8s.cluster import connect, fullname, instance_selector, workload_not_ready


@dataclass
class Release:
    """The release under test and typed API handles to its cluster."""

    api: client.ApiClient
    server: str
    name: str
    namespace: str

    @property
    def fullname(self) -> str:
        return fullname(self.name)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    def selector(self, component: str | None = None) -> str:
        return instance_selector(self.name, component)

    def workloads(self) -> list:
        """The release's Deployments and StatefulSets (subcharts' included)."""
        apps = self.apps
        return (apps.list_namespaced_deployment(self.namespace, label_selector=self.selector()).items
                + apps.list_namespaced_stateful_set(self.namespace, label_selector=self.selector()).items)

    def not_ready(self) -> list[str]:
        return [why for w in self.workloads() if (why := workload_not_ready(w))]

    def running_pods(self, component: str) -> list[client.V1Pod]:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=self.selector(component)).items
        return [p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp]


@pytest.fixture(scope="session", autouse=True)
def cluster() -> Iterator[Release]:
    """The release in the cluster of KUBECONFIG; skips every test when there is no cluster."""
    api, server = connect(timeout=5)
    if api is None:
        pytest.skip(server)
    release = Release(api, server, os.environ.get("MLAPI_RELEASE", "mlapi"),
                      os.environ.get("MLAPI_NAMESPACE", "mlapi"))
    try:
        yield release
    finally:
        api.close()


@pytest.fixture(scope="session")
def ready_release(cluster: Release) -> Release:
    """The release once every Deployment and StatefulSet of it is ready (MLAPI_K8S_READY_TIMEOUT)."""
    found = cluster.workloads()
    assert found, (f"no Deployment or StatefulSet labelled {cluster.selector()} in namespace "
                   f"{cluster.namespace} of {cluster.server}: is the release installed?")
    timeout = env_seconds("MLAPI_K8S_READY_TIMEOUT", 300)
    wait_until(lambda: not cluster.not_ready(), timeout,
               lambda: "the release's workloads to be ready: " + "; ".join(cluster.not_ready()), 3)
    return cluster


@pytest.fixture(scope="session")
def admin_token(cluster: Release) -> str | None:
    """MLAPI_TOKEN, else the chart's admin token; None when the release has neither (auth off)."""
    if os.environ.get("MLAPI_TOKEN"):
        return os.environ["MLAPI_TOKEN"]
    try:
        secret = cluster.core.read_namespaced_secret(f"{cluster.fullname}-admin-token", cluster.namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return base64.b64decode(secret.data["token"]).decode()


@dataclass
class Gateway:
    """Where the API answers from outside: base URL and the Host header the route matches."""

    url: str
    host: str | None

    @property
    def predict_url(self) -> str:
        return self.url.rstrip("/") + "/v1/predict"


def _route_hostnames_and_parent(cluster: Release) -> tuple[list[str], dict | None]:
    try:
        routes = client.CustomObjectsApi(cluster.api).list_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", cluster.namespace, "httproutes",
            label_selector=cluster.selector())["items"]
    except ApiException as exc:
        if exc.status == 404:  # no Gateway API CRDs
            return [], None
        raise
    if routes:
        spec = routes[0]["spec"]
        parents = spec.get("parentRefs") or [None]
        return spec.get("hostnames") or [], parents[0]
    ingresses = client.NetworkingV1Api(cluster.api).list_namespaced_ingress(
        cluster.namespace, label_selector=cluster.selector()).items
    hosts = [r.host for i in ingresses for r in (i.spec.rules or []) if r.host]
    return hosts, None


@pytest.fixture(scope="session")
def gateway(ready_release: Release) -> Iterator[Gateway]:
    """MLAPI_GATEWAY_URL (Host: MLAPI_GATEWAY_HOST or the route's first hostname); without it, a
    port-forward to the Envoy Gateway Service of the release's HTTPRoute; else skip."""
    hostnames, parent = _route_hostnames_and_parent(ready_release)
    host = os.environ.get("MLAPI_GATEWAY_HOST") or (hostnames[0] if hostnames else None)
    if os.environ.get("MLAPI_GATEWAY_URL"):
        yield Gateway(os.environ["MLAPI_GATEWAY_URL"], host)
        return
    if parent is None:
        pytest.skip("MLAPI_GATEWAY_URL is unset and the release has no HTTPRoute to derive it from")
    kubectl = find_tool("kubectl")
    if kubectl is None:
        pytest.skip("MLAPI_GATEWAY_URL is unset and kubectl (to port-forward to the gateway) is not on PATH")
    gw_namespace = parent.get("namespace") or ready_release.namespace
    services = ready_release.core.list_service_for_all_namespaces(
        label_selector=f"gateway.envoyproxy.io/owning-gateway-name={parent['name']},"
                       f"gateway.envoyproxy.io/owning-gateway-namespace={gw_namespace}").items
    if not services:
        pytest.skip(f"MLAPI_GATEWAY_URL is unset and no Envoy Gateway Service serves Gateway "
                    f"{gw_namespace}/{parent['name']}")
    svc = services[0]
    with PortForward(f"service/{svc.metadata.name}", svc.spec.ports[0].port, svc.metadata.namespace,
                     kubectl=kubectl) as forward:
        yield Gateway(f"http://127.0.0.1:{forward.port}", host)


@pytest.fixture(scope="session")
def predict_ready(gateway: Gateway, admin_token: str | None) -> Gateway:
    """The gateway once one prediction through it answered 200 (a fresh route or worker may lag)."""
    last = ["nothing yet"]

    def answered() -> bool:
        result = run_load(gateway.predict_url, total=1, concurrency=1, token=admin_token, host=gateway.host)
        last[0] = result.summary()
        return result.ok == 1

    wait_until(answered, env_seconds("MLAPI_K8S_READY_TIMEOUT", 300),
               lambda: f"a 200 from {gateway.predict_url} (Host {gateway.host}): {last[0]}", 3)
    return gateway
