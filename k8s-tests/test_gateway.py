"""/v1/predict answers 200 through the gateway (or ingress) with the release's admin token."""

import json
import urllib.error
import urllib.request

from mlapi_k8s import env_seconds, wait_until


def test_predict_through_gateway(gateway, admin_token):
    headers = {"Content-Type": "application/json"}
    if admin_token:
        headers["Authorization"] = f"Bearer {admin_token}"
    if gateway.host:
        headers["Host"] = gateway.host
    body = json.dumps({"text": "I love this, it works great"}).encode()
    seen: list[str] = []

    def predict() -> dict | None:
        request = urllib.request.Request(gateway.predict_url, body, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:  # a fresh route or worker answers 404/503 at first
            seen.append(f"{exc.code} {exc.read()[:200]!r}")
        except OSError as exc:
            seen.append(repr(exc))
        return None

    answer = wait_until(predict, env_seconds("MLAPI_K8S_READY_TIMEOUT", 300),
                        lambda: f"200 from POST {gateway.predict_url} (Host {gateway.host}); got {seen[-3:]}",
                        interval=3)
    assert answer["label"] in ("negative", "neutral", "positive"), answer
    assert answer["model_version"], answer
