"""The corrections database, against SQLite and a real PostgreSQL: migrations, idempotent
storing, de-duplication, caps, the hold rule, operators' confirmations, stats and export."""

from __future__ import annotations

import csv
import io
import os

import pytest

from mlapi.contracts import FeedbackMessage
from mlapi.feedback.db import FeedbackDB

from .conftest import run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def db(db_url):
    db = FeedbackDB(db_url)
    db.migrate()
    yield db
    db.close()


def msg(text="great", label="positive", client="alice", predicted=None, confidence=0.95):
    prediction = None
    if predicted:
        probs = {"negative": 0.0, "neutral": 0.0, "positive": 0.0, predicted: confidence}
        prediction = {"id": "p" * 32, "label": predicted, "probabilities": probs, "model_version": "v1"}
    return FeedbackMessage(text=text, label=label, client=client, prediction=prediction)


def store(db, *messages, cap=100):
    return db.store([(m, None, 0, i) for i, m in enumerate(messages)], cap=cap, hold_confidence=0.9)


def test_migrations_reach_head_and_rerun_harmlessly(db):
    assert db.revision() == "0003"
    db.migrate()
    assert db.revision() == "0003"


def alembic(db, verb: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from mlapi.feedback.db import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, verb)(cfg, revision)


def test_0003_moves_confirmations_out_of_the_reason_and_back(db_url):
    from sqlalchemy import text

    db = FeedbackDB(db_url)
    try:
        alembic(db, "upgrade", "0002")
        insert = text("INSERT INTO corrections (feedback_id, text, text_sha256, label, status, "
                      "reason, client, source, received_at, stored_at) VALUES (:fid, 't', 'h', "
                      "'positive', :status, :reason, 'alice', 'api', :at, :at)")
        with db.engine.begin() as conn:
            for fid, status, reason in (("a", "accepted", "confirmed by bob"),
                                        ("b", "accepted", "confirmed by another client"),
                                        ("c", "accepted", None),
                                        ("d", "held", "contradicts a 0.95-confident prediction")):
                conn.execute(insert, {"fid": fid, "status": status, "reason": reason,
                                      "at": "2026-12-01 00:00:00+00:00"})
        db.migrate()
        assert db.revision() == "0003"
        confirmed = {r.feedback_id: r.confirmed_by for r in db.corrections(("accepted", "held"))}
        assert confirmed == {"a": "bob", "b": "another client", "c": None, "d": None}
        # The database itself now refuses a status outside the set (another writer, a typo).
        with pytest.raises(Exception, match="(?i)check"), db.engine.begin() as conn:
            conn.execute(insert, {"fid": "e", "status": "acepted", "reason": None,
                                  "at": "2026-12-01 00:00:00+00:00"})
        alembic(db, "downgrade", "0002")
        with db.engine.connect() as conn:
            columns = conn.execute(text("SELECT * FROM corrections")).keys()
        assert "confirmed_by" not in columns and "reason" in columns
    finally:
        db.close()


def test_an_unknown_status_never_reaches_the_database(db):
    with pytest.raises(ValueError, match="'acepted' is not a valid Status"):
        db.corrections(("acepted",))


def test_a_redelivered_batch_is_counted_once(db):
    batch = [msg("a"), msg("b"), msg("c", label=None)]
    assert len(store(db, *batch)) == 3
    # The service died after the database commit, before the Kafka commit: same messages again.
    assert store(db, *batch) == []
    stats = db.stats()
    assert (stats["received"], stats["accepted"], stats["flagged"]) == (3, 2, 1)


def test_the_same_correction_twice_counts_once(db):
    first, second = store(db, msg("same"), msg("same"))
    assert (first.status, second.status) == ("accepted", "duplicate")
    assert db.stats()["accepted"] == 1 and db.stats()["duplicate"] == 1


def test_a_client_over_its_daily_cap_is_rejected(db):
    rows = store(db, *[msg(f"text {i}") for i in range(4)], msg("other", client="bob"), cap=3)
    assert [r.status for r in rows] == ["accepted"] * 3 + ["rejected", "accepted"]
    assert "cap" in rows[3].reason


def test_held_until_a_second_client_confirms(db):
    (held,) = store(db, msg("I love it", label="negative", predicted="positive"))
    assert held.status == "held"
    (confirming,) = store(db, msg("I love it", label="negative", client="bob", predicted="positive"))
    assert confirming.status == "accepted"
    accepted = {r.client: r.confirmed_by for r in db.corrections(("accepted",))}
    assert accepted == {"alice": "bob", "bob": "alice"}  # each confirmed by the other


def test_operators_confirm_held_and_label_flagged(db):
    held, flagged = store(db, msg("x", label="negative", predicted="positive"), msg("y", label=None))
    with pytest.raises(ValueError, match="without a label"):
        db.resolve(flagged.id)
    labelled = db.resolve(flagged.id, "neutral")
    assert (labelled.label, labelled.confirmed_by) == ("neutral", "operator")
    assert db.resolve(held.id, by="carol").status == "accepted"
    assert db.get(held.id).confirmed_by == "carol"
    with pytest.raises(ValueError, match="only held or flagged"):
        db.resolve(held.id)
    with pytest.raises(LookupError):
        db.resolve(10_000)


def test_malformed_messages_are_rejected_once(db):
    rows = db.store([(None, "not JSON", 2, 7)], cap=100, hold_confidence=0.9)
    assert rows[0].status == "rejected" and "not JSON" in rows[0].reason
    assert db.store([(None, "not JSON", 2, 7)], cap=100, hold_confidence=0.9) == []


def test_export_is_a_training_corpus(db, db_url, tmp_path):
    store(db, msg("love it", "positive"), msg("hate it", "negative"), msg("it is a chair", "neutral"),
          msg("flag me", None))
    out = tmp_path / "fb.csv"
    env = {**os.environ, "MLAPI_FEEDBACK_DB": db_url, "MLAPI_STATE_DIR": str(tmp_path)}
    done = run_cli("feedback", "export", "-o", str(out), env=env)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert {(r["text"], r["label"]) for r in rows} == {("love it", "positive"), ("hate it", "negative"),
                                                       ("it is a chair", "neutral")}
    from mlapi.model.corpus import load_csv

    assert load_csv(out).labels.count("positive") == 1  # `mlapi train --corpus` reads it
    listed = run_cli("feedback", "list", "--status", "flagged", env=env)
    assert "flag me" in listed.stdout
    refused = run_cli("feedback", "list", "--status", "flagged,acepted", env=env)
    assert refused.returncode == 2
    assert "'flagged,acepted': statuses are accepted, held, flagged, duplicate, rejected" in refused.stderr
