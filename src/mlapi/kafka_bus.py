"""Everything that talks to Kafka: topic set-up, the producer the API uses, the workers' consumer.

Written to the Kafka protocol only (kafka-python), so it runs against Apache Kafka in a cluster
and the embedded Tansu broker locally. Two facts shape it:

* an idempotent producer whose broker restarted empty never recovers by itself
  (``InitProducerId`` errors): after any send error the producer is dropped and made again;
* with auto-commit on, kafka-python commits what ``poll()`` returned, processed or not: the
  consumer never auto-commits, the worker commits after its results are stored.
"""

from __future__ import annotations

import logging
import threading

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from .config import Settings

log = logging.getLogger(__name__)

# Fail fast: the API answers 503 in about this long when the broker is unreachable.
CONNECT_TIMEOUT_MS = 2000


class QueueUnavailable(RuntimeError):
    """The broker could not take (or confirm) a message in time."""


def bootstrap(settings: Settings) -> list[str]:
    servers = [s.strip() for s in settings.kafka_bootstrap.split(",") if s.strip()]
    if not servers:
        raise ValueError("MLAPI_KAFKA_BOOTSTRAP is empty: give host:port of a Kafka broker")
    return servers


def security(settings: Settings) -> dict:
    """Client options for TLS (a CA, a client certificate for mutual TLS) and SASL (managed
    Kafka, Strimzi); nothing extra for PLAINTEXT."""
    options: dict = {"security_protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        if settings.kafka_ssl_cafile:
            options["ssl_cafile"] = str(settings.kafka_ssl_cafile)
        if settings.kafka_ssl_certfile:  # Settings makes sure the key comes with it
            options["ssl_certfile"] = str(settings.kafka_ssl_certfile)
            options["ssl_keyfile"] = str(settings.kafka_ssl_keyfile)
            if settings.kafka_ssl_password:
                options["ssl_password"] = settings.kafka_ssl_password
    if settings.kafka_security_protocol.startswith("SASL_"):
        options.update(sasl_mechanism=settings.kafka_sasl_mechanism,
                       sasl_plain_username=settings.kafka_sasl_username,
                       sasl_plain_password=settings.kafka_sasl_password)
    return options


def ensure_topics(settings: Settings) -> None:
    """Create the predict and feedback topics if missing; existing topics are left as they are."""
    topics = [
        NewTopic(settings.predict_topic, num_partitions=settings.predict_partitions,
                 replication_factor=settings.topic_replication),
        # The log of record of every correction: never deleted by age or size.
        NewTopic(settings.feedback_topic, num_partitions=settings.feedback_partitions,
                 replication_factor=settings.topic_replication,
                 topic_configs={"retention.ms": "-1", "retention.bytes": "-1",
                                "cleanup.policy": "delete"}),
    ]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap(settings), client_id="mlapi-admin",
                             request_timeout_ms=5000, bootstrap_timeout_ms=CONNECT_TIMEOUT_MS,
                             **security(settings))
    try:
        for topic in topics:
            try:
                admin.create_topics([topic])
                log.info("created topic %s (%d partitions)", topic.name, topic.num_partitions)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


class Producer:
    """A thread-safe, lazily made producer that remakes itself after errors.

    One per process, made after gunicorn forks (never at import time).
    """

    def __init__(self, settings: Settings, client_id: str = "mlapi-api"):
        self.settings = settings
        self.client_id = client_id
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def _get(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                try:
                    ensure_topics(self.settings)
                    self._producer = KafkaProducer(
                        bootstrap_servers=bootstrap(self.settings),
                        client_id=self.client_id,
                        # Set explicitly: a conflicting option silently turns idempotence off.
                        acks="all",
                        enable_idempotence=True,
                        linger_ms=0,
                        max_block_ms=CONNECT_TIMEOUT_MS,
                        bootstrap_timeout_ms=CONNECT_TIMEOUT_MS,
                        request_timeout_ms=3000,
                        delivery_timeout_ms=5000,
                        retry_backoff_ms=50,
                        reconnect_backoff_max_ms=1000,
                        **security(self.settings),
                    )
                except KafkaError as exc:
                    raise QueueUnavailable(f"Kafka at {self.settings.kafka_bootstrap} is "
                                           f"unreachable ({type(exc).__name__})") from exc
            return self._producer

    def send(self, topic: str, key: str, value: bytes, timeout: float) -> None:
        """Send and wait for the broker's acknowledgement (acks=all), at most ``timeout`` s."""
        producer = self._get()
        try:
            producer.send(topic, key=key.encode(), value=value).get(timeout=max(timeout, 0.05))
        except KafkaError as exc:
            self.reset(producer)
            raise QueueUnavailable(f"Kafka did not take the job ({type(exc).__name__}: {exc})") from exc

    def reset(self, broken: KafkaProducer | None = None) -> None:
        """Drop the producer so the next send makes a fresh one (after a broker restart)."""
        with self._lock:
            if self._producer is not None and (broken is None or self._producer is broken):
                old, self._producer = self._producer, None
            else:
                return
        try:
            old.close(timeout=0)
        except Exception:  # closing a broken producer may raise; it is gone either way
            log.debug("closing a broken producer failed", exc_info=True)

    def ping(self, timeout: float = 2.0) -> bool:
        """True when the broker answers a metadata request for the predict topic."""
        try:
            producer = self._get()
            return bool(producer.partitions_for(self.settings.predict_topic))
        except (KafkaError, QueueUnavailable):
            self.reset()
            return False

    def close(self) -> None:
        self.reset()


def consumer(settings: Settings, client_id: str, topic: str | None = None,
             group: str | None = None, max_records: int | None = None) -> KafkaConsumer:
    """A group member with manual commits, short timeouts and small fetch waits.

    The workers' (predict topic, MLAPI_CONSUMER_GROUP) unless ``topic``/``group`` say otherwise
    (the feedback service reads the feedback topic in MLAPI_FEEDBACK_GROUP).
    """
    session = settings.kafka_session_timeout_ms
    return KafkaConsumer(
        topic or settings.predict_topic,
        bootstrap_servers=bootstrap(settings),
        group_id=group or settings.consumer_group,
        client_id=client_id,
        enable_auto_commit=False,
        # 'earliest' with committed offsets: a new group starts from what is still queued.
        auto_offset_reset="earliest",
        max_poll_records=max_records or settings.batch_max,
        # Default 500 ms would add half a second to a quiet queue's latency.
        fetch_max_wait_ms=5,
        # A dead worker is noticed within one session timeout; heartbeat under a third of it.
        session_timeout_ms=session,
        heartbeat_interval_ms=max(100, session // 3 - 100),
        request_timeout_ms=max(30000, session + 5000),
        bootstrap_timeout_ms=CONNECT_TIMEOUT_MS * 5,
        reconnect_backoff_max_ms=1000,
        **security(settings),
    )
