"""The chart's own pod specs, run with the real images (`make image-test`, podman only).

No cluster runs here, but `podman kube play` runs Kubernetes pod specs: the api, worker and
feedback pods exactly as `helm template` renders them (args, env from the ConfigMap and
Secrets, the API keys Secret mounted as a directory, read-only root, non-root UID, dropped
capabilities, the retrain container beside the feedback service), against the suite's Redis
and broker as an "external" Redis and Kafka. What a cluster adds (Services, DNS, policies,
probes acted upon) is checked by rendering in tests/chart.

Three changes are made to the rendered objects, each for podman 4.3 rather than for the chart:
Deployments become Pods (its Deployment support crashes); a Secret mounted as a volume is given
as a ConfigMap of the same content (podman 4.3 mounts a Secret's base64 text, or crashes without
`optional`); with the host's network the container ports are dropped (podman refuses port
mappings there) and probes name their port by number.
"""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.error
import urllib.request
import uuid

import pytest
import yaml

from mlapi.local import servers
from mlapi.local.stack import http_request as http

from ..chart.conftest import CHART, helm_bin
from ..conftest import wait_for
from .conftest import engine
from .test_images import REPO, TAG, sh, wait_serving

pytestmark = pytest.mark.image


@pytest.fixture(autouse=True, scope="module")
def podman_engine() -> None:
    """`podman kube play` runs pod specs; docker has no equivalent. Looked up here, not at import."""
    if engine() != "podman":
        pytest.skip(f"needs `podman kube play` (engine here: {engine()}); the chart itself is "
                    "tested by rendering")


def as_pods(docs: list[dict]) -> list[dict]:
    """ConfigMaps, Secrets, and each Deployment's pod template as a Pod, for podman 4.3."""
    out = []
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            out.append(doc)
        elif doc["kind"] == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in doc.get("data", {}).items()}
            out.append({"apiVersion": "v1", "kind": "ConfigMap", "data": data,
                        "metadata": {"name": doc["metadata"]["name"] + "-as-configmap"}})
        elif doc["kind"] == "Deployment":
            template = doc["spec"]["template"]
            spec = template["spec"]
            for volume in spec.get("volumes", []):
                if "secret" in volume:
                    secret = volume.pop("secret")
                    volume["configMap"] = {"name": secret["secretName"] + "-as-configmap",
                                           "items": secret.get("items", [])}
            for container in spec["containers"]:
                ports = {p["name"]: p["containerPort"] for p in container.pop("ports", [])}
                for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                    get = container.get(probe, {}).get("httpGet")
                    if get:
                        get["port"] = ports.get(get["port"], get["port"])
            out.append({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": doc["metadata"]["name"],
                                     "labels": template["metadata"]["labels"]},
                        "spec": spec})
    return out


@pytest.fixture(scope="module")
def release(redis_server, kafka_server, tmp_path_factory):
    """The chart's api, worker and feedback pods, on free ports, against the suite's servers."""
    name = f"kp{uuid.uuid4().hex[:6]}"
    ports = {"api": servers.free_port(), "worker": servers.free_port(),
             "feedback": servers.free_port()}
    # The chart fixes the ports a pod listens on; extraEnv entries come after the chart's own,
    # and as in Kubernetes the last definition of a variable wins.
    values = {
        "redis": {"enabled": False}, "kafka": {"enabled": False},
        "externalRedis": {"url": f"redis://127.0.0.1:{redis_server.port}/0"},
        "externalKafka": {"bootstrap": f"127.0.0.1:{kafka_server.port}"},
        # A long deadline: this is about the pods' wiring, on a machine that may be busy.
        "config": {"predictPartitions": 4, "kafkaSessionTimeoutMs": 3000, "predictTimeout": 30,
                   "redisPrefix": name,
                   "extra": {"MLAPI_PREDICT_TOPIC": f"{name}.predict",
                             "MLAPI_FEEDBACK_TOPIC": f"{name}.feedback",
                             "MLAPI_CONSUMER_GROUP": f"{name}-workers",
                             "MLAPI_FEEDBACK_GROUP": f"{name}-feedback"}},
        "image": {"tag": TAG},
        "api": {"image": {"registry": "", "repository": f"{REPO}mlapi-api"}, "replicaCount": 1,
                "extraEnv": [{"name": "MLAPI_PORT", "value": str(ports["api"])}]},
        "worker": {"image": {"registry": "", "repository": f"{REPO}mlapi-worker"},
                   "autoscaling": {"enabled": False}, "replicaCount": 1,
                   "extraEnv": [{"name": "MLAPI_WORKER_METRICS_PORT",
                                 "value": str(ports["worker"])}]},
        "feedback": {"image": {"registry": "", "repository": f"{REPO}mlapi-feedback"},
                     "persistence": {"enabled": False}, "retrain": {"every": "2s"},
                     "extraEnv": [{"name": "MLAPI_FEEDBACK_METRICS_PORT",
                                   "value": str(ports["feedback"])}]},
    }
    work = tmp_path_factory.mktemp("kube")
    (work / "values.yaml").write_text(yaml.safe_dump(values))
    rendered = subprocess.run([helm_bin(), "template", name, str(CHART), "-f",
                               str(work / "values.yaml"), "--skip-tests"],
                              capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    play = work / "play.yaml"
    play.write_text(yaml.safe_dump_all(as_pods(docs)))
    token = next(base64.b64decode(d["data"]["token"]).decode() for d in docs
                 if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-admin-token"))
    url = f"http://127.0.0.1:{ports['api']}"
    try:
        sh("kube", "play", "--network", "host", str(play), timeout=300)
        wait_serving(url, 180, "the chart's api pod ready with a live worker")
        yield {"name": name, "url": url, "token": token, "ports": ports}
    finally:
        for pod in ("api", "worker", "feedback"):
            for container in ([pod] + (["retrain"] if pod == "feedback" else [])):
                logs = sh("logs", f"{name}-mlapi-{pod}-{container}", check=False)
                print(f"--- {pod}/{container}\n{logs.stdout[-2000:]}{logs.stderr[-2000:]}")
        sh("kube", "down", str(play), check=False, timeout=120)



def post(url: str, body: dict, token: str = "") -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_the_generated_admin_token_predicts_and_no_token_is_refused(release):
    url = release["url"]
    status, body = post(url + "/v1/predict", {"text": "I love it, wonderful"}, release["token"])
    assert status == 200, body
    answer = json.loads(body)
    assert answer["label"] == "positive" and answer["model_version"]
    status, body = post(url + "/v1/predict", {"text": "I love it"})
    assert status == 401 and b"Bearer" in body


def test_probes_of_worker_and_feedback_answer_on_their_ports(release):
    for component in ("worker", "feedback"):
        status, body = http("GET", f"http://127.0.0.1:{release['ports'][component]}/healthz",
                            timeout=5)
        assert status == 200, (component, body)


def test_the_retrain_container_runs_on_its_schedule(release):
    """The sidecar starts (`--every` is a real option of the image) and runs: a decision or a
    logged failure each tick, never an exit."""
    name = f"{release['name']}-mlapi-feedback-retrain"

    def ran():
        logs = sh("logs", name, check=False)
        return "run finished" in logs.stdout + logs.stderr
    wait_for(ran, 120, "a finished retraining run in the retrain container's log")
    state = sh("inspect", name, "--format", "{{.State.Running}}").stdout.strip()
    assert state == "true"
