"""Kafka client options: TLS and SASL for managed Kafka and Strimzi.

Our test broker (Tansu) speaks PLAINTEXT only, so the SASL and TLS (CA, client certificate)
options are checked as the options kafka-python receives; PLAINTEXT against the real broker is
what every integration test does.
"""

from __future__ import annotations

import pytest

from mlapi.config import Settings
from mlapi.kafka_bus import security


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
