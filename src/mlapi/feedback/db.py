"""Everything that talks to the corrections database (SQLAlchemy; SQLite or PostgreSQL).

The schema is owned by Alembic (``migrations/``): ``migrate()`` brings any database to the
newest revision and is run by the service at start and by ``mlapi feedback migrate``.
Storing is idempotent on ``feedback_id``, so a batch the broker delivers twice (the service
died after the database commit and before the Kafka commit) is counted once.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Enum,
    Float,
    Integer,
    String,
    Text,
    create_engine,
    func,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from ..contracts import FeedbackMessage
from . import policy
from .policy import Status

MIGRATIONS = Path(__file__).parent / "migrations"


class UnknownCorrection(LookupError):
    """No correction with that id."""


class CorrectionRefused(ValueError):
    """The correction cannot be confirmed as asked (its state, or a missing label)."""


class Base(DeclarativeBase):
    pass


class Correction(Base):
    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    feedback_id: Mapped[str] = mapped_column(String(64), unique=True)
    # Set for counted rows only (accepted/held/flagged): one per client, text and label.
    dedupe_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    text: Mapped[str] = mapped_column(Text)
    text_sha256: Mapped[str] = mapped_column(String(64), index=True)
    label: Mapped[str | None] = mapped_column(String(16))
    # The enum's values in a VARCHAR (no database enum type, so a new status needs no ALTER TYPE);
    # SQLAlchemy refuses any other string before it reaches the database.
    status: Mapped[Status] = mapped_column(
        Enum(Status, native_enum=False, length=16, validate_strings=True,
             values_callable=lambda members: [m.value for m in members]), index=True)
    reason: Mapped[str | None] = mapped_column(String(200))  # for people; code reads the columns
    # Who made a held correction count: another client sending the same label, or an operator
    # (`mlapi feedback confirm`). Such rows are not judged again by the champion at retraining.
    confirmed_by: Mapped[str | None] = mapped_column(String(200))
    client: Mapped[str] = mapped_column(String(200), index=True)
    source: Mapped[str] = mapped_column(String(32))
    prediction_id: Mapped[str | None] = mapped_column(String(64))
    predicted_label: Mapped[str | None] = mapped_column(String(16))
    predicted_confidence: Mapped[float | None] = mapped_column(Float)
    model_version: Mapped[str | None] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kafka_partition: Mapped[int | None] = mapped_column(Integer)
    kafka_offset: Mapped[int | None] = mapped_column(BigInteger)

    def as_dict(self) -> dict:
        return {c.name: _plain(getattr(self, c.name)) for c in self.__table__.columns}


class RetrainRun(Base):
    __tablename__ = "retrain_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    champion: Mapped[str | None] = mapped_column(String(100))
    candidate: Mapped[str | None] = mapped_column(String(100))
    report: Mapped[dict] = mapped_column(JSON)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _plain(value):
    if isinstance(value, datetime):
        # SQLite hands back naive datetimes; every stored time is UTC.
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return value


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class FeedbackDB:
    def __init__(self, url: str):
        self.url = url
        connect_args = {}
        if url.startswith("sqlite"):
            # The service and `mlapi retrain` share the file: wait for the other's lock.
            connect_args = {"timeout": 30}
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
        self.session = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Bring the schema to Alembic's head (a no-op when it is there already)."""
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def close(self) -> None:
        self.engine.dispose()

    # --- the service ---------------------------------------------------------------------------
    def store(self, items: list[tuple], *, cap: int, hold_confidence: float) -> list[Correction]:
        """Store one polled batch in one transaction; returns the rows that are new.

        ``items`` are ``(message | None, error, partition, offset)``: a message that failed to
        parse is stored as rejected under a key made of its position, so it too counts once.
        """
        now = datetime.now(UTC)
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        ids = [m.feedback_id if m else f"kafka:{p}:{o}" for m, _, p, o in items]
        new: list[Correction] = []
        with self.session.begin() as s:
            known = set(s.scalars(select(Correction.feedback_id)
                                  .where(Correction.feedback_id.in_(ids))))
            for (message, error, partition, offset), fid in zip(items, ids, strict=True):
                if fid in known:
                    continue  # delivered again after a crash: already stored and counted
                known.add(fid)
                if message is None:
                    row = Correction(feedback_id=fid, text="", text_sha256="", status=Status.REJECTED,
                                     reason=f"malformed: {error}"[:200], client="unknown",
                                     source="unknown", received_at=now, stored_at=now,
                                     kafka_partition=partition, kafka_offset=offset)
                else:
                    row = self._judge(s, message, now, day_start, cap, hold_confidence)
                    row.kafka_partition, row.kafka_offset = partition, offset
                s.add(row)
                s.flush()  # later messages of the same batch must see this one
                new.append(row)
        return new

    def _judge(self, s, message: FeedbackMessage, now, day_start, cap, hold_confidence) -> Correction:
        digest = text_hash(message.text)
        dedupe = hashlib.sha256(f"{message.client}\0{digest}\0{message.label or '-'}".encode()).hexdigest()
        seen = s.scalar(select(func.count()).where(Correction.dedupe_key == dedupe)) > 0
        used = s.scalar(select(func.count()).where(
            Correction.client == message.client, Correction.status.in_(policy.COUNTED),
            Correction.stored_at >= day_start))
        agreeing = select(Correction).where(
            Correction.text_sha256 == digest, Correction.label == message.label,
            Correction.client != message.client, Correction.status.in_((Status.ACCEPTED, Status.HELD)))
        others = list(s.scalars(agreeing)) if message.label else []
        verdict = policy.decide(message, seen=seen, used_today=used, cap=cap,
                                others_agree=bool(others), hold_confidence=hold_confidence)
        if verdict.status == Status.ACCEPTED and others:
            for other in others:
                if other.status == Status.HELD:
                    other.status, other.reason = Status.ACCEPTED, f"confirmed by {message.client}"
                    other.confirmed_by = message.client[:200]
        pred = message.prediction or {}
        return Correction(
            feedback_id=message.feedback_id,
            dedupe_key=dedupe if verdict.status in policy.COUNTED else None,
            text=message.text, text_sha256=digest, label=message.label, status=verdict.status,
            reason=verdict.reason or None, client=message.client[:200], source=message.source[:32],
            confirmed_by=(", ".join(sorted({o.client for o in others}))[:200]
                          if verdict.confirmed else None),
            prediction_id=pred.get("id"), predicted_label=pred.get("label"),
            predicted_confidence=policy.confidence(message), model_version=pred.get("model_version"),
            received_at=_utc(message.received) if message.received else now, stored_at=now)

    def stats(self) -> dict:
        with self.session() as s:
            by_status = dict(s.execute(select(Correction.status, func.count())
                                       .group_by(Correction.status)).all())
            by_label = dict(s.execute(select(Correction.label, func.count())
                                      .where(Correction.status == Status.ACCEPTED)
                                      .group_by(Correction.label)).all())
            clients = s.scalar(select(func.count(func.distinct(Correction.client)))
                               .where(Correction.status.in_(policy.COUNTED)))
            last = s.scalar(select(func.max(Correction.received_at)))
        counts = {status.value: int(by_status.get(status, 0)) for status in Status}
        return {"received": sum(by_status.values()), **counts,
                "by_label": {label: int(by_label.get(label, 0)) for label in
                             ("negative", "neutral", "positive")},
                "clients": int(clients or 0), "last_received": _plain(last),
                "updated": datetime.now(UTC).isoformat(timespec="seconds")}

    # --- operators and retraining ----------------------------------------------------------------
    def corrections(self, statuses: tuple[Status, ...] = (Status.ACCEPTED,)) -> list[Correction]:
        statuses = tuple(Status(status) for status in statuses)  # ValueError names a wrong one
        with self.session() as s:
            return list(s.scalars(select(Correction).where(Correction.status.in_(statuses))
                                  .order_by(Correction.id)))

    def get(self, row_id: int) -> Correction | None:
        with self.session() as s:
            return s.get(Correction, row_id)

    def resolve(self, row_id: int, label: str | None = None, by: str = "operator") -> Correction:
        """Confirm a held correction, or label a flagged one; either way it becomes accepted."""
        with self.session.begin() as s:
            row = s.get(Correction, row_id)
            if row is None:
                raise UnknownCorrection(f"no correction {row_id}")
            if row.status == Status.FLAGGED:
                if label is None:
                    raise CorrectionRefused(f"correction {row_id} is a report without a label: "
                                            "give --label")
                row.label = label
            elif row.status != Status.HELD:
                raise CorrectionRefused(f"correction {row_id} is {row.status}; only held or "
                                        "flagged ones can be confirmed")
            elif label is not None and label != row.label:
                row.label = label
            row.status, row.reason, row.confirmed_by = Status.ACCEPTED, f"confirmed by {by}", by[:200]
            return row

    def hold(self, row_ids: list[int], reason: str) -> None:
        with self.session.begin() as s:
            for row in s.scalars(select(Correction).where(Correction.id.in_(row_ids))):
                row.status, row.reason = Status.HELD, reason[:200]

    def agreeing_clients(self) -> Counter:
        """(text sha256, label) -> number of distinct clients whose correction is counted."""
        with self.session() as s:
            rows = s.execute(select(Correction.text_sha256, Correction.label,
                                    func.count(func.distinct(Correction.client)))
                             .where(Correction.status.in_((Status.ACCEPTED, Status.HELD)))
                             .group_by(Correction.text_sha256, Correction.label)).all()
        return Counter({(digest, label): n for digest, label, n in rows})

    def record_run(self, report: dict) -> int:
        with self.session.begin() as s:
            run = RetrainRun(started_at=datetime.fromisoformat(report["started"]),
                             decision=report["decision"], reason=report["reason"],
                             champion=report.get("champion"), candidate=report.get("candidate"),
                             report=report)
            s.add(run)
            s.flush()
            return run.id

    def runs(self, limit: int = 20) -> list[RetrainRun]:
        with self.session() as s:
            return list(s.scalars(select(RetrainRun).order_by(RetrainRun.id.desc()).limit(limit)))

