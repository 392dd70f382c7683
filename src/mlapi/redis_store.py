"""Everything that talks to Redis: job markers, results, reply lists, model info, heartbeats.

Keys (``<p>`` is ``MLAPI_REDIS_PREFIX``):

* ``<p>:job:<id>``     "pending" while a job is queued (so /v1/jobs can tell 202 from 404)
* ``<p>:result:<id>``  the job's result JSON, kept ``MLAPI_RESULT_TTL`` seconds
* ``<p>:reply:<id>``   a list the waiting API request BLPOPs; the worker pushes the result once
* ``<p>:model``        metadata of the model the workers serve (for GET /v1/models)
* ``<p>:worker:<id>``  a worker's heartbeat, expiring when it stops beating
* ``<p>:stats:expired`` jobs the workers skipped because their deadline had passed
* ``<p>:rate:<client>:<window>`` MLAPI_RATE_LIMIT counters (fixed windows)
"""

from __future__ import annotations

import json
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .config import Settings

# One immediate retry covers a pooled connection that died with a restarted Redis; more
# retries would only delay the 503 a client should get when Redis is down.
_RETRY = Retry(NoBackoff(), 1)
HEARTBEAT_TTL = 10


class StoreUnavailable(RuntimeError):
    """Redis could not be reached or answered in time."""


def _client(url: str, socket_timeout: float) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=socket_timeout,
                                retry=_RETRY, health_check_interval=30, decode_responses=False)


class Store:
    def __init__(self, settings: Settings):
        if not settings.redis_url:
            raise ValueError("MLAPI_REDIS_URL is empty: give a redis:// URL")
        self.settings = settings
        self.prefix = settings.redis_prefix
        self.ttl = settings.result_ttl
        self.redis = _client(settings.redis_url, socket_timeout=2.0)
        # Blocking waits get their own pool whose read timeout outlasts the longest wait.
        self._blocking = _client(settings.redis_url,
                                 socket_timeout=max(settings.predict_timeout, 1.0) + 2.0)

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # --- the API side -------------------------------------------------------------------
    def mark_pending(self, job_id: str, ttl: float, owner: str = "") -> None:
        """The marker's value is the owner (the API key's name; "" when auth is off)."""
        with _errors():
            self.redis.set(self.key("job", job_id), owner.encode(), ex=max(1, int(ttl) + self.ttl))

    def wait_result(self, job_id: str, timeout: float) -> dict | None:
        """Block until the worker pushes the job's result, or ``timeout`` seconds pass."""
        if timeout <= 0:
            return None
        with _errors():
            # BLPOP takes fractional seconds since Redis 6.
            popped = self._blocking.blpop([self.key("reply", job_id)], timeout=timeout)
        return json.loads(popped[1]) if popped else None

    def job_status(self, job_id: str) -> tuple[str, dict | None, str]:
        """("done", result, owner) | ("pending", None, owner) | ("unknown", None, "")."""
        with _errors():
            pipe = self.redis.pipeline(transaction=False)
            pipe.get(self.key("result", job_id))
            pipe.get(self.key("job", job_id))
            result, pending = pipe.execute()
        if result is not None:
            data = json.loads(result)
            return "done", data, data.get("owner", "")
        return ("pending", None, pending.decode()) if pending is not None else ("unknown", None, "")

    def charge(self, client: str, cost: int, limit: int, window: int) -> int:
        """Count ``cost`` against a fixed window; 0 if within ``limit``, else seconds to wait.

        A refused charge is taken back, so a batch too big for what is left does not also
        use up the rest of the window.
        """
        now = time.time()
        start = int(now // window) * window
        key = self.key("rate", client, str(start))
        with _errors():
            pipe = self.redis.pipeline(transaction=False)
            pipe.incrby(key, cost)
            pipe.expire(key, window + 1)
            used, _ = pipe.execute()
            if used <= limit:
                return 0
            self.redis.decrby(key, cost)
        return max(1, int(start + window - now + 0.999))

    def model_info(self) -> dict | None:
        with _errors():
            raw = self.redis.get(self.key("model"))
        return json.loads(raw) if raw else None

    def live_workers(self) -> int:
        return len(self.workers())

    def workers(self) -> list[dict]:
        """The heartbeats of live workers: id, pid, model version, partitions, jobs done."""
        with _errors():
            keys = list(self.redis.scan_iter(match=self.key("worker", "*"), count=100))
            values = self.redis.mget(keys) if keys else []
        return [json.loads(v) for v in values if v]

    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False

    # --- the worker side ----------------------------------------------------------------
    def put_results(self, results: list[dict]) -> None:
        """Store every result of a batch and wake the waiting requests, in one round trip."""
        with _errors():
            pipe = self.redis.pipeline(transaction=False)
            for result in results:
                raw = json.dumps(result, separators=(",", ":"))
                job = result["job"]
                pipe.set(self.key("result", job), raw, ex=self.ttl)
                pipe.rpush(self.key("reply", job), raw)
                # Nobody may be waiting (async job, or the request gave up): let it expire.
                pipe.expire(self.key("reply", job), max(1, int(self.settings.predict_timeout) + 5))
                pipe.delete(self.key("job", job))
            expired = sum(1 for r in results if r.get("status") == "expired")
            if expired:
                pipe.incrby(self.key("stats", "expired"), expired)
            pipe.execute()

    def publish_model(self, metadata: dict) -> None:
        with _errors():
            self.redis.set(self.key("model"), json.dumps(metadata))

    def heartbeat(self, worker_id: str, info: dict) -> None:
        with _errors():
            self.redis.set(self.key("worker", worker_id),
                           json.dumps({**info, "id": worker_id, "at": time.time()}),
                           ex=HEARTBEAT_TTL)

    def forget_worker(self, worker_id: str) -> None:
        with _errors():
            self.redis.delete(self.key("worker", worker_id))

    def expired_count(self) -> int:
        with _errors():
            return int(self.redis.get(self.key("stats", "expired")) or 0)

    def close(self) -> None:
        self.redis.close()
        self._blocking.close()


class _errors:
    """Turn any redis-py error into ``StoreUnavailable`` so callers handle one type."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, redis.RedisError):
            raise StoreUnavailable(f"Redis is unavailable ({exc_type.__name__}: {exc})") from exc
        return False
