import os
from pathlib import Path

import pytest

from mlapi.config import Settings


def test_defaults_match_the_documented_ones():
    s = Settings.from_env({})
    assert (s.port, s.batch_max, s.batch_wait_ms, s.worker_threads) == (8000, 64, 5, 1)
    assert s.workers == (os.cpu_count() or 1)  # one single-threaded worker per core
    assert s.predict_timeout == 5.0 and s.result_ttl == 600 and s.predict_partitions == 12
    assert s.resolved_model_path == Path(".mlapi/models/default.skops")


def test_reads_and_converts_every_type():
    s = Settings.from_env({"MLAPI_PORT": "9001", "MLAPI_PREDICT_TIMEOUT": "1.5",
                           "MLAPI_MODEL_PATH": "/m/x.skops", "MLAPI_REDIS_URL": "redis://r:1/0"})
    assert s.port == 9001 and s.predict_timeout == 1.5
    assert s.model_path == Path("/m/x.skops") and s.redis_url == "redis://r:1/0"


def test_empty_variable_means_default():
    assert Settings.from_env({"MLAPI_PORT": ""}).port == 8000


@pytest.mark.parametrize("name, value, message", [
    ("MLAPI_PORT", "eighty", "MLAPI_PORT='eighty'"),
    ("MLAPI_WORKERS", "0", "MLAPI_WORKERS must be at least 1"),
    ("MLAPI_PREDICT_TIMEOUT", "-1", "MLAPI_PREDICT_TIMEOUT must be positive"),
    ("MLAPI_BATCH_WAIT_MS", "-5", "MLAPI_BATCH_WAIT_MS must not be negative"),
    ("MLAPI_PORT", "70000", "ports must be between"),
    ("MLAPI_KAFKA_SECURITY_PROTOCOL", "TLS", "must be one of PLAINTEXT, SSL, SASL_PLAINTEXT"),
])
def test_bad_values_name_the_variable(name, value, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env({name: value})


def test_as_env_round_trips():
    s = Settings(port=8123, workers=3, model_path=Path("/tmp/m.skops"), redis_url="redis://x/1")
    assert Settings.from_env(s.as_env()) == s


@pytest.mark.parametrize("env, message", [
    ({"MLAPI_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "MLAPI_KAFKA_SASL_MECHANISM must be one of"),
    ({"MLAPI_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "MLAPI_KAFKA_SASL_MECHANISM": "GSSAPI"},
     "MLAPI_KAFKA_SASL_MECHANISM must be one of"),
    ({"MLAPI_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "MLAPI_KAFKA_SASL_MECHANISM": "PLAIN",
      "MLAPI_KAFKA_SASL_USERNAME": "mlapi"}, "MLAPI_KAFKA_SASL_PASSWORD are required"),
])
def test_sasl_needs_a_mechanism_and_credentials(env, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


def test_secrets_stay_out_of_repr():
    settings = Settings.from_env({"MLAPI_REDIS_PASSWORD": "r-secret",
                                  "MLAPI_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                                  "MLAPI_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                                  "MLAPI_KAFKA_SASL_USERNAME": "mlapi",
                                  "MLAPI_KAFKA_SASL_PASSWORD": "k-secret"})
    assert "r-secret" not in repr(settings) and "k-secret" not in repr(settings)
    # ... but they do reach child processes, which rebuild the settings from the environment.
    assert Settings.from_env(settings.as_env()) == settings


@pytest.fixture
def pem_files(tmp_path):
    for name in ("ca.crt", "tls.crt", "tls.key"):
        (tmp_path / name).write_text("-----BEGIN CERTIFICATE-----\n")
    return tmp_path


def test_tls_files_are_read_as_paths(pem_files):
    s = Settings.from_env({
        "MLAPI_REDIS_URL": "rediss://r.example:6380/0",
        "MLAPI_REDIS_SSL_CAFILE": str(pem_files / "ca.crt"),
        "MLAPI_REDIS_SSL_CERTFILE": str(pem_files / "tls.crt"),
        "MLAPI_REDIS_SSL_KEYFILE": str(pem_files / "tls.key"),
        "MLAPI_KAFKA_SECURITY_PROTOCOL": "SSL",
        "MLAPI_KAFKA_SSL_CAFILE": str(pem_files / "ca.crt"),
        "MLAPI_KAFKA_SSL_CERTFILE": str(pem_files / "tls.crt"),
        "MLAPI_KAFKA_SSL_KEYFILE": str(pem_files / "tls.key"),
        "MLAPI_KAFKA_SSL_PASSWORD": "key-secret"})
    assert s.redis_ssl_cafile == pem_files / "ca.crt"
    assert (s.redis_ssl_certfile, s.redis_ssl_keyfile) == (pem_files / "tls.crt",
                                                           pem_files / "tls.key")
    assert (s.kafka_ssl_certfile, s.kafka_ssl_keyfile) == (pem_files / "tls.crt",
                                                           pem_files / "tls.key")
    assert "key-secret" not in repr(s)  # the key's password stays out of logs
    assert Settings.from_env(s.as_env()) == s  # and reaches child processes


@pytest.mark.parametrize("env, message", [
    # a certificate without its key, and the reverse
    ({"MLAPI_KAFKA_SECURITY_PROTOCOL": "SSL", "MLAPI_KAFKA_SSL_CERTFILE": "tls.crt"},
     "MLAPI_KAFKA_SSL_CERTFILE is set but MLAPI_KAFKA_SSL_KEYFILE is not"),
    ({"MLAPI_KAFKA_SECURITY_PROTOCOL": "SSL", "MLAPI_KAFKA_SSL_KEYFILE": "tls.key"},
     "MLAPI_KAFKA_SSL_KEYFILE is set but MLAPI_KAFKA_SSL_CERTFILE is not"),
    ({"MLAPI_REDIS_URL": "rediss://r:6380/0", "MLAPI_REDIS_SSL_CERTFILE": "tls.crt"},
     "MLAPI_REDIS_SSL_CERTFILE is set but MLAPI_REDIS_SSL_KEYFILE is not"),
    ({"MLAPI_REDIS_URL": "rediss://r:6380/0", "MLAPI_REDIS_SSL_KEYFILE": "tls.key"},
     "MLAPI_REDIS_SSL_KEYFILE is set but MLAPI_REDIS_SSL_CERTFILE is not"),
    # files that do not exist
    ({"MLAPI_KAFKA_SECURITY_PROTOCOL": "SSL", "MLAPI_KAFKA_SSL_CERTFILE": "missing.crt",
      "MLAPI_KAFKA_SSL_KEYFILE": "tls.key"}, "MLAPI_KAFKA_SSL_CERTFILE=.*missing.crt.*no such file"),
    ({"MLAPI_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "MLAPI_KAFKA_SASL_MECHANISM": "PLAIN",
      "MLAPI_KAFKA_SASL_USERNAME": "u", "MLAPI_KAFKA_SASL_PASSWORD": "p",
      "MLAPI_KAFKA_SSL_CAFILE": "missing.crt"}, "MLAPI_KAFKA_SSL_CAFILE=.*no such file"),
    ({"MLAPI_REDIS_URL": "rediss://r:6380/0", "MLAPI_REDIS_SSL_CAFILE": "missing.crt"},
     "MLAPI_REDIS_SSL_CAFILE=.*no such file"),
    ({"MLAPI_REDIS_URL": "rediss://r:6380/0", "MLAPI_REDIS_SSL_CERTFILE": "tls.crt",
      "MLAPI_REDIS_SSL_KEYFILE": "missing.key"}, "MLAPI_REDIS_SSL_KEYFILE=.*no such file"),
    # TLS files where the connection is not TLS
    ({"MLAPI_KAFKA_SSL_CERTFILE": "tls.crt", "MLAPI_KAFKA_SSL_KEYFILE": "tls.key"},
     "need MLAPI_KAFKA_SECURITY_PROTOCOL SSL or SASL_SSL, got 'PLAINTEXT'"),
    ({"MLAPI_REDIS_URL": "redis://:pw@r:6379/0", "MLAPI_REDIS_SSL_CAFILE": "ca.crt"},
     r"MLAPI_REDIS_SSL_CAFILE need a rediss:// \(TLS\) MLAPI_REDIS_URL, got redis://$"),
    ({"MLAPI_REDIS_SSL_CERTFILE": "tls.crt", "MLAPI_REDIS_SSL_KEYFILE": "tls.key"},
     "need a rediss:// .*got \\(empty\\)"),
])
def test_tls_settings_errors(pem_files, monkeypatch, env, message):
    monkeypatch.chdir(pem_files)  # relative names resolve against the fixture's files
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


def test_a_ca_file_without_tls_is_ignored_as_before():
    # MLAPI_KAFKA_SSL_CAFILE means nothing without TLS, so it is not looked for.
    s = Settings.from_env({"MLAPI_KAFKA_SSL_CAFILE": "/nonexistent/ca.crt"})
    assert s.kafka_ssl_cafile == Path("/nonexistent/ca.crt")
