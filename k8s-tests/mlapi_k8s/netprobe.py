"""TCP reachability from inside a pod: the script a throwaway pod runs, and its pod manifests."""

from __future__ import annotations

import json

# Run as `python -c PROBE_SCRIPT SPEC` where SPEC is a JSON list of
# {"name", "host", "port", "expect": "open"|"blocked"}. A connect is retried (up to the
# deadline) until it gives the expected outcome, so a policy still being programmed does not
# decide the result. Prints one JSON line: name -> {"resolved", "connected", "error", "tries"}.
PROBE_SCRIPT = r"""
import json, socket, sys, time
checks = json.loads(sys.argv[1])
deadline = time.monotonic() + float(sys.argv[2]) if len(sys.argv) > 2 else time.monotonic() + 30
results = {}
for check in checks:
    outcome = {"resolved": None, "connected": False, "error": "", "tries": 0}
    while True:
        outcome["tries"] += 1
        try:
            addr = socket.getaddrinfo(check["host"], check["port"], type=socket.SOCK_STREAM)[0][4]
            outcome["resolved"] = addr[0]
        except OSError as exc:
            outcome.update(connected=False, error="resolve: %s" % exc)
        else:
            try:
                socket.create_connection(addr[:2], timeout=3).close()
                outcome.update(connected=True, error="")
            except OSError as exc:
                outcome.update(connected=False, error="%s: %s" % (type(exc).__name__, exc))
        if outcome["connected"] == (check["expect"] == "open") or time.monotonic() > deadline:
            break
        time.sleep(1)
    results[check["name"]] = outcome
print(json.dumps(results), flush=True)
"""

# A TCP listener that accepts and closes connections: the target of the enforcement check.
LISTENER_SCRIPT = r"""
import socket
server = socket.create_server(("0.0.0.0", 8080))
while True:
    conn, _ = server.accept()
    conn.close()
"""

TEST_LABEL = "mlapi.io/k8s-test"


def restricted_container(name: str, image: str, args: list[str]) -> dict:
    """A container meeting the "restricted" Pod Security Standard that runs ``python -c``."""
    return {
        "name": name, "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-c"], "args": args,
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
        "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
    }


def pod_manifest(name: str, role: str, container: dict, *, restart: str = "Never",
                 readiness_port: int | None = None) -> dict:
    """A pod outside every release: only the test's own label, no service account token."""
    if readiness_port:
        container = {**container, "readinessProbe": {"tcpSocket": {"port": readiness_port},
                                                     "periodSeconds": 1}}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {TEST_LABEL: role}},
        "spec": {
            "restartPolicy": restart, "automountServiceAccountToken": False,
            "activeDeadlineSeconds": 600, "terminationGracePeriodSeconds": 0,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [container],
        },
    }


def deny_ingress_policy(name: str, role: str) -> dict:
    """A NetworkPolicy that denies all ingress to the test pods labelled ``role``."""
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": name, "labels": {TEST_LABEL: role}},
        "spec": {"podSelector": {"matchLabels": {TEST_LABEL: role}}, "policyTypes": ["Ingress"]},
    }


def probe_args(checks: list[dict], deadline_s: float = 30) -> list[str]:
    return [PROBE_SCRIPT, json.dumps(checks), str(deadline_s)]


def parse_probe_output(log: str) -> dict:
    """The JSON line of the probe's log (the last line that parses), else ValueError."""
    for line in reversed(log.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    raise ValueError(f"no JSON result in the probe's log: {log[-500:]!r}")
