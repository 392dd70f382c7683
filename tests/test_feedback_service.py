"""The feedback service as a process, with the real broker, Redis and database: corrections
sent while it is killed and restarted are all stored, none twice; stats reach the API."""

from __future__ import annotations

import threading
import time

import pytest

from mlapi.contracts import FeedbackMessage
from mlapi.feedback.db import FeedbackDB
from mlapi.kafka_bus import Producer
from mlapi.redis_store import Store

from .conftest import make_settings, start_feedback_service, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOTAL = 600


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_killed_mid_stream_nothing_lost_nothing_twice(redis_server, kafka_server, model_path,
                                                      tmp_path, request, database):
    if database == "sqlite":
        url = f"sqlite:///{tmp_path / 'feedback.db'}"
    else:
        from .conftest import new_postgres_db

        url = new_postgres_db(request.getfixturevalue("postgres_server"))
    settings = make_settings(redis_server.port, kafka_server.port, model_path, feedback_db=url,
                             feedback_client_cap=10_000)
    logs = tmp_path / "logs"
    service = start_feedback_service(settings, logs)
    producer = Producer(settings, client_id="test-feedback")
    db = FeedbackDB(url)
    store = Store(settings)
    sent: list[str] = []

    def send_all():
        for i in range(TOTAL):
            # Every 10th is a repeat of the one before from the same client: one duplicate each.
            text = f"correction {i - 1 if i % 10 == 9 else i}"
            message = FeedbackMessage(text=text, label="positive", client=f"client-{i % 7}"
                                      if i % 10 != 9 else f"client-{(i - 1) % 7}")
            producer.send(settings.feedback_topic, message.partition_key, message.to_bytes(), 5.0)
            sent.append(message.feedback_id)
            time.sleep(0.01)

    try:
        sender = threading.Thread(target=send_all)
        sender.start()
        db.migrate()
        wait_for(lambda: db.stats()["received"] > 50, timeout=30, what="the service storing")
        service.kill()  # SIGKILL: no clean shutdown, offsets of the last batch not committed
        killed_at = db.stats()["received"]
        service = start_feedback_service(settings, logs)
        sender.join()
        stats = wait_for(lambda: (s := db.stats())["received"] >= TOTAL and s, timeout=60,
                         what="every correction stored")
        time.sleep(1.0)  # anything counted twice would show up now
        stats = db.stats()
        rows = db.corrections(("accepted", "duplicate"))
    finally:
        service.stop()
        producer.close()
        db.close()
    assert 0 < killed_at < TOTAL, "the kill must land mid-stream"
    assert stats["received"] == TOTAL
    assert sorted(r.feedback_id for r in rows) == sorted(sent)
    assert stats["duplicate"] == TOTAL // 10 and stats["accepted"] == TOTAL - TOTAL // 10
    published = wait_for(lambda: (s := store.feedback_stats()) and s["received"] == TOTAL and s,
                         timeout=30, what="stats in Redis")
    store.close()
    assert published["by_label"]["positive"] == stats["accepted"]
