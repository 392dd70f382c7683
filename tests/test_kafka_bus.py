"""Kafka client options: TLS and SASL for managed Kafka and Strimzi.

Our test broker (Tansu) speaks PLAINTEXT only, so the SASL and TLS (CA, client certificate)
options are checked as the options kafka-python receives; PLAINTEXT against the real broker is
what every integration test does.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time

import pytest

from mlapi.config import Settings
from mlapi.kafka_bus import Producer, QueueUnavailable, consumer, security
from mlapi.local import servers

from .conftest import make_settings
from .pki import make_pki


@pytest.fixture
def pem_dir(tmp_path, monkeypatch):
    """ca.pem, tls.crt and tls.key in the working directory (Settings checks they exist)."""
    for name in ("ca.pem", "tls.crt", "tls.key"):
        (tmp_path / name).write_text("pem")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("env, expected", [
    ({}, {"security_protocol": "PLAINTEXT"}),
    ({"MLAPI_KAFKA_SECURITY_PROTOCOL": "SSL", "MLAPI_KAFKA_SSL_CAFILE": "ca.pem"},
     {"security_protocol": "SSL", "ssl_cafile": "ca.pem"}),
    ({"MLAPI_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "MLAPI_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
      "MLAPI_KAFKA_SASL_USERNAME": "mlapi", "MLAPI_KAFKA_SASL_PASSWORD": "pw"},
     {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
      "sasl_plain_username": "mlapi", "sasl_plain_password": "pw"}),
    # A CA file means nothing without TLS: it is not passed.
    ({"MLAPI_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "MLAPI_KAFKA_SASL_MECHANISM": "PLAIN",
      "MLAPI_KAFKA_SASL_USERNAME": "u", "MLAPI_KAFKA_SASL_PASSWORD": "p",
      "MLAPI_KAFKA_SSL_CAFILE": "/etc/ca.pem"},
     {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
      "sasl_plain_username": "u", "sasl_plain_password": "p"}),
    # Mutual TLS (a Strimzi `tls` user): the client certificate and its key.
    ({"MLAPI_KAFKA_SECURITY_PROTOCOL": "SSL", "MLAPI_KAFKA_SSL_CAFILE": "ca.pem",
      "MLAPI_KAFKA_SSL_CERTFILE": "tls.crt", "MLAPI_KAFKA_SSL_KEYFILE": "tls.key"},
     {"security_protocol": "SSL", "ssl_cafile": "ca.pem", "ssl_certfile": "tls.crt",
      "ssl_keyfile": "tls.key"}),
    # ... with SASL on top, and an encrypted key.
    ({"MLAPI_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "MLAPI_KAFKA_SASL_MECHANISM": "PLAIN",
      "MLAPI_KAFKA_SASL_USERNAME": "u", "MLAPI_KAFKA_SASL_PASSWORD": "p",
      "MLAPI_KAFKA_SSL_CERTFILE": "tls.crt", "MLAPI_KAFKA_SSL_KEYFILE": "tls.key",
      "MLAPI_KAFKA_SSL_PASSWORD": "kp"},
     {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_plain_username": "u",
      "sasl_plain_password": "p", "ssl_certfile": "tls.crt", "ssl_keyfile": "tls.key",
      "ssl_password": "kp"}),
], ids=["plaintext", "ssl-ca", "sasl-ssl", "sasl-plaintext-ca-ignored", "mtls", "mtls-sasl"])
def test_security_options(pem_dir, env, expected):
    assert security(Settings.from_env(env)) == expected


def test_the_options_are_accepted_by_kafka_python():
    # kafka-python rejects unknown or inconsistent options when a client is built.
    from kafka import KafkaProducer

    settings = Settings.from_env({"MLAPI_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                                  "MLAPI_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
                                  "MLAPI_KAFKA_SASL_USERNAME": "u",
                                  "MLAPI_KAFKA_SASL_PASSWORD": "p"})
    producer = KafkaProducer(bootstrap_servers=["127.0.0.1:1"], bootstrap_timeout_ms=50,
                             api_version=(2, 8), **security(settings))
    try:
        assert producer.config["sasl_mechanism"] == "SCRAM-SHA-256"
    finally:
        producer.close(timeout=0)


# --- mutual TLS for real: kafka-python's handshake with a client certificate ----------------
# Tansu has no usable TLS listener, so a TLS terminator that requires a client certificate
# signed by the test CA sits in front of it (as stunnel or a mesh sidecar would), and Tansu
# advertises the terminator's address: every connection kafka-python makes (admin, producer,
# consumer) goes through TLS. This checks the client side of mutual TLS end to end; the broker's
# own TLS code (Apache Kafka's, in the cluster) is not what is tested.

class _TLSTerminator:
    """TLS on 127.0.0.1:``port`` (client certificate required), plain TCP to ``upstream``."""

    def __init__(self, upstream: int, pki):
        self.upstream = upstream
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(pki / "server.crt", pki / "server.key")
        self.context.load_verify_locations(pki / "ca.crt")
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.port = servers.free_port()
        self.clients: list[str] = []  # subjects of the certificates that got through
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(lambda loop, ctx: None)  # refused handshakes are expected
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        assert ready.wait(10), "the TLS terminator did not start"

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(
            self._serve, "127.0.0.1", self.port, ssl=self.context))
        ready.set()
        self.loop.run_forever()

    async def _serve(self, reader, writer):
        cert = writer.get_extra_info("peercert") or {}
        self.clients.append(dict(x[0] for x in cert.get("subject", ())).get("commonName", ""))
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)

        async def pump(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    def close(self):
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def tls_kafka(tmp_path_factory):
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    broker_port = servers.free_port()
    terminator = _TLSTerminator(broker_port, pki)
    state = tmp_path_factory.mktemp("tls-kafka")
    broker = servers.Server("kafka-tls", [
        servers.broker_binary(), "broker", "--listener-url", f"tcp://127.0.0.1:{broker_port}",
        "--advertised-listener-url", f"tcp://127.0.0.1:{terminator.port}"],
        broker_port, state / "kafka.log").start()
    yield terminator, pki
    broker.stop()
    terminator.close()


def _tls_settings(tls_kafka, tmp_path, **files):
    terminator, pki = tls_kafka
    settings = make_settings(1, terminator.port, tmp_path / "m.skops",
                             kafka_security_protocol="SSL",
                             **{k: pki / v for k, v in files.items()})
    settings.validate()  # as at start: the files exist, the certificate with its key
    return settings


def test_mutual_tls_produce_and_consume(tls_kafka, tmp_path):
    settings = _tls_settings(tls_kafka, tmp_path, kafka_ssl_cafile="ca.crt",
                             kafka_ssl_certfile="client.crt", kafka_ssl_keyfile="client.key")
    producer = Producer(settings)
    reader = None
    try:
        producer.send(settings.predict_topic, "k", b"over mutual TLS", timeout=10)  # admin too
        reader = consumer(settings, "tls-test")
        got = []
        deadline = time.monotonic() + 20
        while not got and time.monotonic() < deadline:
            got = [m.value for batch in reader.poll(timeout_ms=200).values() for m in batch]
        assert got == [b"over mutual TLS"]
    finally:
        producer.close()
        if reader is not None:
            reader.close()
    assert tls_kafka[0].clients and set(tls_kafka[0].clients) == {"client"}


@pytest.mark.parametrize("files", [
    {"kafka_ssl_cafile": "ca.crt"},  # no client certificate: the terminator refuses it
    {"kafka_ssl_certfile": "client.crt", "kafka_ssl_keyfile": "client.key"},  # no CA: unverified
], ids=["no-client-cert", "no-ca"])
def test_without_the_right_files_kafka_is_unavailable(tls_kafka, tmp_path, files):
    producer = Producer(_tls_settings(tls_kafka, tmp_path, **files))
    try:
        with pytest.raises(QueueUnavailable, match="unreachable"):
            producer.send("mlapi.tls.refused", "k", b"x", timeout=2)
    finally:
        producer.close()
