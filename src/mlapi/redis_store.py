"""Everything that talks to Redis: jobs, results, predictions, heartbeats, the model registry.

Keys (``<p>`` is ``MLAPI_REDIS_PREFIX``):

* ``<p>:job:<id>``     "pending" while a job is queued (so /v1/jobs can tell 202 from 404)
* ``<p>:result:<id>``  the job's result JSON, kept ``MLAPI_RESULT_TTL`` seconds
* ``<p>:reply:<id>``   a list the waiting API request BLPOPs; the worker pushes the result once
* ``<p>:pred:<id>``    a prediction with its text, kept ``MLAPI_FEEDBACK_WINDOW`` s for corrections
* ``<p>:worker:<id>``  a worker's heartbeat, expiring when it stops beating
* ``<p>:workers``      sorted set of worker ids by last beat, so finding the live workers
                       reads a handful of keys instead of SCANning every result in Redis
* ``<p>:stats:expired`` jobs the workers skipped because their deadline had passed
* ``<p>:rate:<client>:<window>`` MLAPI_RATE_LIMIT counters (fixed windows)
* ``<p>:feedback:stats`` the feedback service's counts (GET /v1/feedback/stats)
* ``<p>:models:*``     the model registry (see ``Registry``)
"""

from __future__ import annotations

import json
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .config import Settings
from .contracts import JobResult

# One immediate retry covers a pooled connection that died with a restarted Redis; more
# retries would only delay the 503 a client should get when Redis is down.
_RETRY = Retry(NoBackoff(), 1)
HEARTBEAT_TTL = 10


class NotInRegistry(LookupError):
    """A version the registry does not keep, or no earlier champion to go back to."""

    @classmethod
    def version(cls, version: str) -> NotInRegistry:
        return cls(f"no version {version!r} in the registry (see `mlapi models list`)")


class StoreUnavailable(RuntimeError):
    """Redis could not be reached or answered in time."""


def tls_options(settings: Settings) -> dict:
    """redis-py's options for a rediss:// URL: the CA bundle and a client certificate when set
    (Settings refuses them with a redis:// URL); nothing for redis://."""
    if not settings.redis_url.startswith("rediss://"):
        return {}
    options: dict = {}
    if settings.redis_ssl_cafile:
        options["ssl_ca_certs"] = str(settings.redis_ssl_cafile)
    if settings.redis_ssl_certfile:
        options["ssl_certfile"] = str(settings.redis_ssl_certfile)
        options["ssl_keyfile"] = str(settings.redis_ssl_keyfile)
    return options


def _client(settings: Settings, socket_timeout: float) -> redis.Redis:
    # A password in the URL wins over MLAPI_REDIS_PASSWORD (redis-py lets the URL override).
    return redis.Redis.from_url(settings.redis_url, password=settings.redis_password or None,
                                socket_connect_timeout=1.0, socket_timeout=socket_timeout,
                                retry=_RETRY, health_check_interval=30, decode_responses=False,
                                **tls_options(settings))


class Store:
    def __init__(self, settings: Settings):
        if not settings.redis_url:
            raise ValueError("MLAPI_REDIS_URL is empty: give a redis:// URL")
        self.settings = settings
        self.prefix = settings.redis_prefix
        self.ttl = settings.result_ttl
        self.redis = _client(settings, socket_timeout=2.0)
        # Blocking waits get their own pool whose read timeout outlasts the longest wait.
        self._blocking = _client(settings,
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

    def prediction(self, pred_id: str) -> dict | None:
        """A recent prediction (text, label, probabilities, model_version, owner), or None."""
        with _errors():
            raw = self.redis.get(self.key("pred", pred_id))
        return json.loads(raw) if raw else None

    def feedback_stats(self) -> dict | None:
        with _errors():
            raw = self.redis.get(self.key("feedback", "stats"))
        return json.loads(raw) if raw else None

    def put_feedback_stats(self, stats: dict) -> None:
        with _errors():
            self.redis.set(self.key("feedback", "stats"), json.dumps(stats))

    def live_workers(self) -> int:
        return len(self.workers())

    def workers(self) -> list[dict]:
        """The heartbeats of live workers: id, pid, model version, partitions, jobs done.

        The index only says where to look; a heartbeat key's own TTL says whether it is live,
        so clocks of different machines never decide it.
        """
        with _errors():
            ids = [raw.decode() for raw in self.redis.zrange(self.key("workers"), 0, -1)]
            values = self.redis.mget([self.key("worker", i) for i in ids]) if ids else []
        return [json.loads(v) for v in values if v]

    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False

    # --- the worker side ----------------------------------------------------------------
    def put_results(self, results: list[JobResult], texts: dict[str, str] | None = None) -> None:
        """Store every result of a batch and wake the waiting requests, in one round trip.

        ``texts`` (prediction id -> text) keeps each prediction correctable for
        MLAPI_FEEDBACK_WINDOW seconds: POST /v1/feedback {"id": ...} looks the text up here.
        """
        texts = texts or {}
        window = self.settings.feedback_window
        with _errors():
            pipe = self.redis.pipeline(transaction=False)
            for result in results:
                for pred in result.predictions:
                    if pred["id"] in texts:
                        record = {"text": texts[pred["id"]], "label": pred["label"],
                                  "probabilities": pred["probabilities"],
                                  "model_version": pred["model_version"], "owner": result.owner}
                        pipe.set(self.key("pred", pred["id"]), json.dumps(record), ex=window)
                raw = json.dumps(result.to_dict(), separators=(",", ":"))
                job = result.job_id
                pipe.set(self.key("result", job), raw, ex=self.ttl)
                pipe.rpush(self.key("reply", job), raw)
                # Nobody may be waiting (async job, or the request gave up): let it expire.
                pipe.expire(self.key("reply", job), max(1, int(self.settings.predict_timeout) + 5))
                pipe.delete(self.key("job", job))
            expired = sum(1 for r in results if r.status == "expired")
            if expired:
                pipe.incrby(self.key("stats", "expired"), expired)
            pipe.execute()

    def heartbeat(self, worker_id: str, info: dict) -> None:
        now = time.time()
        with _errors():
            pipe = self.redis.pipeline(transaction=False)
            pipe.set(self.key("worker", worker_id),
                     json.dumps({**info, "id": worker_id, "at": now}), ex=HEARTBEAT_TTL)
            pipe.zadd(self.key("workers"), {worker_id: now})
            # Ids of workers long gone (killed, so they never said goodbye) leave the index.
            pipe.zremrangebyscore(self.key("workers"), "-inf", now - 30 * HEARTBEAT_TTL)
            pipe.execute()

    def forget_worker(self, worker_id: str) -> None:
        with _errors():
            pipe = self.redis.pipeline(transaction=False)
            pipe.delete(self.key("worker", worker_id))
            pipe.zrem(self.key("workers"), worker_id)
            pipe.execute()

    def expired_count(self) -> int:
        with _errors():
            return int(self.redis.get(self.key("stats", "expired")) or 0)

    def close(self) -> None:
        self.redis.close()
        self._blocking.close()


class Registry:
    """Model versions, their archives and the champion pointer, in Redis (no shared volume).

    * ``<p>:models:index``       sorted set of versions by creation time
    * ``<p>:models:meta:<v>``    the version's metadata (metrics, sha256, corpus, decision...)
    * ``<p>:models:file:<v>``    the compressed skops archive itself
    * ``<p>:models:champion``    the version workers serve
    * ``<p>:models:history``     earlier champions, newest first (``rollback`` pops it)
    * ``<p>:models:events``      pub/sub channel: the new champion's version, on every change
    """

    def __init__(self, settings: Settings):
        if not settings.redis_url:
            raise ValueError("MLAPI_REDIS_URL is empty: give a redis:// URL")
        self.prefix = settings.redis_prefix
        self.keep = settings.model_keep
        # Archives are megabytes: a longer read timeout than the request path's.
        self.redis = _client(settings, socket_timeout=15.0)

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, "models", *parts))

    @property
    def channel(self) -> str:
        return self.key("events")

    def add(self, meta: dict, archive: bytes) -> None:
        """Store a version (metadata and archive); old non-champion versions beyond keep go."""
        version = meta["version"]
        with _errors():
            pipe = self.redis.pipeline(transaction=True)
            pipe.set(self.key("file", version), archive)
            pipe.set(self.key("meta", version), json.dumps(meta))
            pipe.zadd(self.key("index"), {version: time.time()})
            pipe.execute()
        self.trim()

    def update_meta(self, version: str, **changes) -> None:
        meta = self.meta(version)
        if meta is None:
            raise NotInRegistry.version(version)
        with _errors():
            self.redis.set(self.key("meta", version), json.dumps({**meta, **changes}))

    def meta(self, version: str) -> dict | None:
        with _errors():
            raw = self.redis.get(self.key("meta", version))
        return json.loads(raw) if raw else None

    def archive(self, version: str) -> bytes | None:
        with _errors():
            return self.redis.get(self.key("file", version))

    def versions(self) -> list[dict]:
        """Metadata of every kept version, newest first."""
        with _errors():
            names = [v.decode() for v in self.redis.zrevrange(self.key("index"), 0, -1)]
            raws = self.redis.mget([self.key("meta", v) for v in names]) if names else []
        return [json.loads(raw) for raw in raws if raw]

    def champion(self) -> str | None:
        with _errors():
            raw = self.redis.get(self.key("champion"))
        return raw.decode() if raw else None

    def history(self) -> list[str]:
        with _errors():
            return [v.decode() for v in self.redis.lrange(self.key("history"), 0, -1)]

    def promote(self, version: str) -> str | None:
        """Make ``version`` the champion and tell the workers; returns the previous champion."""
        if self.meta(version) is None:
            raise NotInRegistry.version(version)
        with _errors(), self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(self.key("champion"))
                    raw = pipe.get(self.key("champion"))
                    previous = raw.decode() if raw else None
                    pipe.multi()
                    pipe.set(self.key("champion"), version)
                    if previous and previous != version:
                        pipe.lpush(self.key("history"), previous)
                        pipe.ltrim(self.key("history"), 0, 99)
                    pipe.publish(self.channel, version)
                    pipe.execute()
                    return previous
                except redis.WatchError:
                    continue  # another promote won the race; read the pointer again

    def rollback(self) -> tuple[str, str]:
        """Back to the previous champion still kept; returns ``(from, to)``."""
        current = self.champion()
        with _errors():
            while True:
                raw = self.redis.lpop(self.key("history"))
                if raw is None:
                    raise NotInRegistry("no earlier champion to roll back to")
                previous = raw.decode()
                if previous != current and self.redis.exists(self.key("file", previous)):
                    break
            self.redis.set(self.key("champion"), previous)
            self.redis.publish(self.channel, previous)
        return current or "", previous

    def bootstrap(self, meta: dict, archive: bytes) -> bool:
        """Register a worker's local model as champion when the registry has none (first start,
        or a Redis that came back empty). True when this call made it champion."""
        with _errors():
            if self.redis.exists(self.key("champion")):
                return False
        if self.meta(meta["version"]) is None:
            self.add({**meta, "origin": meta.get("origin", "bootstrap")}, archive)
        with _errors():
            made = bool(self.redis.set(self.key("champion"), meta["version"], nx=True))
            if made:
                self.redis.publish(self.channel, meta["version"])
        return made

    def trim(self) -> list[str]:
        """Drop the oldest versions beyond ``keep``, never the champion or the one before it."""
        with _errors():
            names = [v.decode() for v in self.redis.zrevrange(self.key("index"), 0, -1)]
        protected = {self.champion(), *self.history()[:1]}
        dropped = [v for v in names[self.keep:] if v not in protected]
        if dropped:
            with _errors():
                pipe = self.redis.pipeline(transaction=True)
                for version in dropped:
                    pipe.delete(self.key("file", version), self.key("meta", version))
                    pipe.zrem(self.key("index"), version)
                pipe.execute()
        return dropped

    def pubsub(self):
        """A subscription to champion changes (the caller polls ``get_message``)."""
        with _errors():
            sub = self.redis.pubsub(ignore_subscribe_messages=True)
            sub.subscribe(self.channel)
        return sub

    def close(self) -> None:
        self.redis.close()


class _errors:
    """Turn any redis-py error into ``StoreUnavailable`` so callers handle one type."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, redis.RedisError):
            raise StoreUnavailable(f"Redis is unavailable ({exc_type.__name__}: {exc})") from exc
        return False
