"""The Redis client: MLAPI_REDIS_PASSWORD against a real Redis that requires one."""

from __future__ import annotations

import pytest

from mlapi.local import servers
from mlapi.redis_store import Store, StoreUnavailable

from .conftest import make_settings


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
