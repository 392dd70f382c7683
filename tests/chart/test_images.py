"""Images and pull secrets: global.imageRegistry, global.imagePullSecrets, digests, every pod."""

from __future__ import annotations

import pytest

from .conftest import pod_templates, render, render_case

pytestmark = pytest.mark.chart

AIR_GAPPED = "with-private-registry-values.yaml"
REGISTRY = "registry.internal.example:5000"
DIGESTS = {"api": "1", "worker": "2", "feedback": "3", "retrain": "3", "test": "1",
           "redis": "4", "kafka": "5"}


def _component(pt):
    return pt.labels.get("app.kubernetes.io/component") or pt.labels.get("app.kubernetes.io/name")


def test_air_gapped_every_container_image_and_pull_secret():
    r = render_case(AIR_GAPPED).ok()
    templates = pod_templates(r.docs)
    # api, worker, feedback, Valkey, Kafka and the helm test pod: nothing left out.
    assert {_component(pt) for pt in templates} >= {"api", "worker", "feedback", "redis", "kafka",
                                                     "test"}
    for pt in templates:
        component = _component(pt)
        for c in pt.all_containers:
            image = c["image"]
            assert image.startswith(REGISTRY + "/"), (pt.id, image)
            assert image.endswith("@sha256:" + DIGESTS[component] * 64), (pt.id, image)
        secrets = [s["name"] for s in pt.spec.get("imagePullSecrets") or []]
        assert "regcred" in secrets, (pt.id, secrets)
        mlapi_pod = component not in ("redis", "kafka")
        assert ("mlapi-pull" in secrets) == mlapi_pod, (pt.id, secrets)
        assert len(secrets) == len(set(secrets)), (pt.id, secrets)


def test_default_images_name_their_registry():
    r = render_case("defaults").ok()
    images = {c["image"] for pt in pod_templates(r.docs) for c in pt.all_containers}
    assert images == {"ghcr.io/mlapi/mlapi-api:0.1.0", "ghcr.io/mlapi/mlapi-worker:0.1.0",
                      "ghcr.io/mlapi/mlapi-feedback:0.1.0", "docker.io/valkey/valkey:8.1",
                      "docker.io/apache/kafka:4.1.0"}
    assert all("imagePullSecrets" not in pt.spec for pt in pod_templates(r.docs))


def test_subchart_pull_secrets_of_their_own():
    r = render(sets=("kafka.imagePullSecrets[0].name=kafka-pull", "redis.imagePullSecrets[0]=v-pull"))
    r.ok()
    by = {_component(pt): [s["name"] for s in pt.spec.get("imagePullSecrets") or []]
          for pt in pod_templates(r.docs)}
    assert by["kafka"] == ["kafka-pull"] and by["redis"] == ["v-pull"]
    assert "imagePullSecrets" not in next(pt for pt in pod_templates(r.docs)
                                          if _component(pt) == "api").spec


@pytest.mark.parametrize("sets, image", [
    # A registry of your own with the repository's path under it.
    (("api.image.registry=registry.example.com", "api.image.repository=ml/api", "api.image.tag=1.2"),
     "registry.example.com/ml/api:1.2"),
    # No registry: the repository is the whole reference (how skaffold and `make deploy` set it).
    (("api.image.registry=", "api.image.repository=localhost/mlapi-api", "image.tag=dev"),
     "localhost/mlapi-api:dev"),
    # The workaround older READMEs gave still renders as written.
    (("api.image.tag=0.1.0@sha256:" + "a" * 64,), "ghcr.io/mlapi/mlapi-api:0.1.0@sha256:" + "a" * 64),
])
def test_api_image_reference(sets, image):
    r = render(sets=sets).ok()
    api = next(pt for pt in pod_templates(r.docs) if _component(pt) == "api")
    assert api.containers[0]["image"] == image


@pytest.mark.parametrize("sets", [
    ("api.image.digest=sha256:" + "a" * 64,),
    ("api.image.tag=0.1.0@sha256:" + "a" * 64,),
])
def test_helm_test_pod_runs_the_api_image_with_its_digest(sets):
    """The test pod used to split the API's image on ':' and pull `…:<hex>`, which cannot exist."""
    r = render(sets=sets).ok()
    by = {_component(pt): pt.containers[0]["image"] for pt in pod_templates(r.docs)}
    assert by["test"] == by["api"] and "@sha256:" + "a" * 64 in by["test"]


def test_helm_test_pod_image_of_its_own():
    r = render(sets=("tests.image.repository=tools/python-check", "tests.image.tag=py3",
                     "global.imageRegistry=mirror.local")).ok()
    test = next(pt for pt in pod_templates(r.docs) if _component(pt) == "test")
    assert test.containers[0]["image"] == "mirror.local/tools/python-check:py3"


@pytest.mark.parametrize("digest", ["latest", "sha256:xyz", "md5:" + "a" * 32])
def test_schema_refuses_a_malformed_digest(digest):
    r = render(sets=(f"worker.image.digest={digest}",))
    assert r.rc != 0 and "digest" in r.stderr, r.stderr
