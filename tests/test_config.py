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
