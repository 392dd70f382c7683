"""The whole loop with real parts: corrections through the API, the broker and the feedback
service into the database; `mlapi retrain` behind its gate; workers swapping to the champion."""

from __future__ import annotations

import json
import os

import pytest

from mlapi.api import create_app
from mlapi.api.resources import close_all
from mlapi.feedback.retrain import in_holdout
from mlapi.redis_store import Registry, Store

from .conftest import (
    make_settings,
    run_cli,
    start_feedback_service,
    start_worker,
    wait_for,
    wait_workers,
    warm_up,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# One kind of text the small test model gets wrong: Spanish, which it barely saw.
SPANISH = [
    ("el servicio fue pésimo, una vergüenza", "negative"),
    ("qué mala atención, nunca más", "negative"),
    ("la comida estaba fatal y fría", "negative"),
    ("me arrepiento de haberlo comprado, malísimo", "negative"),
    ("una decepción total, no lo recomiendo", "negative"),
    ("me encanta, es genial", "positive"),
    ("qué maravilla de lugar, volveré", "positive"),
    ("estoy muy contento con la compra, genial", "positive"),
    ("excelente trabajo, muchas gracias", "positive"),
    ("el mejor día de mi vida, me encanta", "positive"),
]
SPANISH_UNSEEN = [
    ("pésimo producto, una vergüenza", "negative"),
    ("la atención fue malísima", "negative"),
    ("qué decepción, fatal", "negative"),
    ("nunca más compro aquí, pésimo", "negative"),
    ("me encanta este lugar, excelente", "positive"),
    ("muchas gracias, genial", "positive"),
    ("estoy contento, es una maravilla", "positive"),
    ("excelente, me encanta", "positive"),
]
# Clear English texts, every label swapped: what a poisoning attempt looks like.
SWAPPED = [(f"{t}", {"positive": "negative", "negative": "positive"}[y]) for t, y in [
    ("I love it, amazing", "positive"), ("this is wonderful, thank you", "positive"),
    ("best day ever, so happy", "positive"), ("great service, loved it", "positive"),
    ("awesome game tonight", "positive"), ("so happy with my new phone", "positive"),
    ("what a beautiful morning", "positive"), ("fantastic food, great people", "positive"),
    ("I'm so excited, this is great", "positive"), ("thank you so much, you are the best", "positive"),
    ("amazing concert, loved every minute", "positive"), ("really enjoyed this, brilliant", "positive"),
    ("perfect weekend with friends", "positive"), ("excellent support, very helpful", "positive"),
    ("happy birthday, have a great day", "positive"),
    ("I hate this, terrible", "negative"), ("worst service ever", "negative"),
    ("this is awful, broken again", "negative"), ("so angry, flight cancelled again", "negative"),
    ("disgusting food and rude staff", "negative"), ("I'm sad and miserable today", "negative"),
    ("total waste of money", "negative"), ("horrible experience, never again", "negative"),
    ("so frustrating, nothing works", "negative"), ("terrible movie, boring", "negative"),
    ("my phone died again, hate it", "negative"), ("awful traffic, late again", "negative"),
    ("feeling sick and tired", "negative"), ("the update broke everything, awful", "negative"),
    ("really disappointed, bad quality", "negative"),
]]


@pytest.fixture
def loop(redis_server, kafka_server, model_path, tmp_path):
    """A worker, the feedback service and the API on their own topics, prefix and database."""
    settings = make_settings(redis_server.port, kafka_server.port, model_path,
                             feedback_db=f"sqlite:///{tmp_path / 'feedback.db'}")
    logs = tmp_path / "logs"
    worker = start_worker(settings, logs)
    service = start_feedback_service(settings, logs)
    app = create_app(settings)
    try:
        wait_workers(settings, 1)
        client = app.test_client()
        warm_up(client)
        yield settings, client
    finally:
        close_all(app)
        service.stop()
        worker.stop()


def predict(client, text: str) -> dict:
    r = client.post("/v1/predict", json={"text": text})
    assert r.status_code == 200, r.json
    return r.json


def correct(client, items, by_id: bool = True) -> None:
    for text, label in items:
        body = {"id": predict(client, text)["id"], "label": label} if by_id else \
            {"text": text, "label": label}
        r = client.post("/v1/feedback", json=body)
        assert r.status_code == 202, r.json


def wait_accepted(settings, count: int) -> dict:
    store = Store(settings)
    try:
        return wait_for(lambda: (s := store.feedback_stats()) and s["received"] >= count and s,
                        timeout=30, what=f"{count} corrections stored")
    finally:
        store.close()


def retrain(settings, *extra: str) -> tuple[dict, str]:
    env = {**os.environ, **settings.as_env()}
    human = run_cli("retrain", "--limit", "6000", *extra, env=env)
    assert human.returncode == 0, human.stderr
    registry = Registry(settings)
    try:
        latest = registry.versions()[0]
    finally:
        registry.close()
    return latest, human.stdout


def right_before(items, before: dict) -> int:
    return sum(before[t] for t, _ in items)


def right(client, items) -> int:
    return sum(predict(client, text)["label"] == label for text, label in items)


def test_corrections_of_one_kind_are_learned_and_served(loop):
    settings, client = loop
    before_seen, before_unseen = right(client, SPANISH), right(client, SPANISH_UNSEEN)
    before_held = {t: predict(client, t)["label"] == y for t, y in SPANISH}
    old = predict(client, "hola")["model_version"]
    assert before_seen <= 5, "the test needs texts the model gets wrong"

    correct(client, SPANISH)
    stats = wait_accepted(settings, len(SPANISH))
    assert stats["accepted"] + stats["held"] == len(SPANISH)

    # The test's small models (6,000 corpus rows) can move one of the 90 golden texts either
    # way by chance, which the default margin (0.01) refuses; the poisoning test below keeps it.
    latest, out = retrain(settings.replace(retrain_margin=0.02))
    assert "PROMOTED" in out, out
    registry = Registry(settings)
    assert registry.champion() == latest["version"] != old
    registry.close()
    # Workers swap within seconds (notification, or the periodic check), plus the archive's load
    # time, which a busy machine multiplies: a generous bound, not a latency claim.
    wait_for(lambda: predict(client, "hola")["model_version"] == latest["version"], timeout=60,
             what="workers serving the new champion")
    # Every correction it trained on is now right; the ones held out for the gate count with
    # the unseen texts, which it must now do better on.
    trained = [(t, y) for t, y in SPANISH if not in_holdout(t, settings.retrain_holdout)]
    held_out = [(t, y) for t, y in SPANISH if in_holdout(t, settings.retrain_holdout)]
    assert latest["feedback"]["train"] == len(trained) and held_out
    assert right(client, trained) == len(trained)
    after_unseen = right(client, SPANISH_UNSEEN + held_out)
    assert after_unseen > before_unseen + right_before(held_out, before_held), \
        (before_unseen, after_unseen)
    models = client.get("/v1/models").json
    assert models["champion"] == latest["version"]
    assert models["current"]["decision"]["decision"] == "promoted"
    assert {v["version"] for v in models["versions"]} >= {old, latest["version"]}

    # Nothing new since: a second run decides "skipped", and the champion stays.
    again, out = retrain(settings)
    assert "SKIPPED" in out and again["version"] == latest["version"]

    # Rollback puts the old model back, and the workers follow.
    done = run_cli("models", "rollback", env={**os.environ, **settings.as_env()})
    assert done.returncode == 0 and old in done.stdout
    wait_for(lambda: predict(client, "hola")["model_version"] == old, timeout=60,
             what="workers serving the rolled-back model")


@pytest.mark.parametrize("hold_confidence", [0.9, 1.0], ids=["guard-on", "guard-off"])
def test_swapped_labels_are_never_promoted(redis_server, kafka_server, model_path, tmp_path,
                                           hold_confidence):
    settings = make_settings(redis_server.port, kafka_server.port, model_path,
                             feedback_db=f"sqlite:///{tmp_path / 'feedback.db'}",
                             feedback_hold_confidence=hold_confidence)
    registry = Registry(settings)
    registry.bootstrap({**json.loads(model_path.with_suffix(".json").read_text())},
                       model_path.read_bytes())
    champion = registry.champion()
    from mlapi.contracts import FeedbackMessage
    from mlapi.feedback.db import FeedbackDB

    db = FeedbackDB(settings.feedback_db_url)
    db.migrate()
    # Three attacker keys, each under the daily cap: the cap alone does not stop this.
    db.store([(FeedbackMessage(text=t, label=y, client=f"attacker-{i % 3}"), None, 0, i)
              for i, (t, y) in enumerate(SWAPPED)], cap=100, hold_confidence=hold_confidence)
    report, out = retrain(settings, "--json")
    decision = json.loads(out)
    assert decision["decision"] in ("refused", "skipped"), decision
    if hold_confidence == 1.0:
        # Nothing held: the candidate is trained on the poison, and the gate refuses it.
        assert decision["decision"] == "refused"
        assert "golden" in decision["reason"] or "base" in decision["reason"]
        assert decision["scores"]["golden"]["candidate"] < decision["scores"]["golden"]["champion"]
    assert registry.champion() == champion
    assert db.runs(1)[0].decision == decision["decision"]
    registry.close()
    db.close()


def test_retrain_every_keeps_going_after_a_failed_run_and_stops_on_sigterm(redis_server, tmp_path):
    """The feedback pod's sidecar: a run that fails (no champion yet) does not end the loop."""
    import signal
    import subprocess
    import sys

    settings = make_settings(redis_server.port, 1, tmp_path / "none.skops",
                             feedback_db=f"sqlite:///{tmp_path / 'feedback.db'}")
    log = tmp_path / "retrain.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mlapi", "retrain", "--every", "0.2"],
                                env={**os.environ, **settings.as_env()}, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: log.read_text().count("run finished (exit 1)") >= 2, 60,
                 "two failed runs")
        assert "the registry has no champion" in log.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
