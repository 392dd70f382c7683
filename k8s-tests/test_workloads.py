"""Every Deployment and StatefulSet of the release becomes ready."""


def test_every_workload_becomes_ready(ready_release):
    kinds = sorted(f"{type(w).__name__.removeprefix('V1')} {w.metadata.name}"
                   for w in ready_release.workloads())
    # The chart's three Deployments and the bundled Redis and Kafka (when enabled) are among them.
    deployments = [k for k in kinds if k.startswith("Deployment ")]
    assert len(deployments) >= 3, f"expected api, worker and feedback Deployments, found {kinds}"
    assert not ready_release.not_ready()
