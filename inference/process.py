"""What every long-running process does about its logs: one line at start, one per outage.

Model workers, the app worker and beat call ``quiet_celery()`` before Celery starts and
``announce_when_ready()`` (workers) or log their own start line (beat):

- no Celery banner (``--quiet``), no "running with superuser privileges" warning, no
  per-retry broker errors (with their tracebacks and deprecation notes): instead, one
  line when the process is ready (name, model, pid, concurrency, queues, broker);
- a ``RedisWatch`` thread pings Redis (and the broker, when it is a Redis of its own)
  and logs one line when it is lost ("lost Redis at …") and one when it is back
  ("Redis back after N s"), counting each outage (``broker_disconnects``) for
  ``/metrics``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import warnings
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis

from inference import counters

log = logging.getLogger(__name__)
BROKER_DISCONNECTS = "broker_disconnects"  # inference.counters: outages seen, per process

# Messages Celery repeats on every retry while the broker is away, and its start-up lines
# that our one start line replaces (matched on the formatted message, by logger).
QUIET = {
    "celery.worker.consumer.consumer": (
        "consumer: Connection to broker lost",
        "consumer: Cannot connect to",
        "Skipping prefetch count reduction",
        "Will retry using next failover",
    ),
    "celery.worker.consumer.connection": ("Connected to ",),
    # ... and beat's line per job sent (the reaper's every 30 s).
    "celery.beat": ("beat: Connection error:", "beat: Starting...", "Scheduler: Sending due task"),
}
READY_LOGGER = "celery.apps.worker"  # "<hostname> ready."
# Celery's logging set-up puts "always" filters for its own warning categories in front of
# ours and routes warnings to this logger (logging.captureWarnings).
WARNINGS_LOGGER = "py.warnings"
QUIET_WARNINGS = ("CPendingDeprecationWarning", "SecurityWarning")


class _Quiet(logging.Filter):
    def __init__(self, prefixes: tuple[str, ...] = (), suffix: str = "") -> None:
        super().__init__()
        self.prefixes, self.suffix = prefixes, suffix

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.suffix and message.endswith(self.suffix):
            return False
        if record.name == WARNINGS_LOGGER:
            return not any(f": {category}:" in message for category in QUIET_WARNINGS)
        return not (self.prefixes and message.startswith(self.prefixes))


# A line per task ("received", "succeeded in"): one per reply in both kinds of worker.
PER_TASK_LOGGERS = ("celery.app.trace", "celery.worker.strategy")
_quieted = False


def quiet_celery() -> None:
    """Keep the process's own logging set-up (Celery only applies ``--loglevel`` to it), and
    silence Celery's banner-time warnings, per-task lines and per-retry connection errors."""
    global _quieted
    from celery.exceptions import CPendingDeprecationWarning, SecurityWarning
    from celery.signals import setup_logging

    if not _quieted:
        _quieted = True

        # Any receiver of setup_logging stops Celery from configuring (and re-levelling)
        # the root logger: the Django settings' LOGGING, or the model worker's basicConfig.
        @setup_logging.connect(weak=False)
        def keep_logging(loglevel: Any = None, **kwargs: Any) -> None:
            if loglevel:
                logging.getLogger().setLevel(loglevel)

    for name in PER_TASK_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)

    # "running the worker with superuser privileges": containers run as root by default,
    # and our JSON-only serializers are what makes that safe for Celery.
    warnings.filterwarnings("ignore", category=SecurityWarning)
    # worker_cancel_long_running_tasks_on_connection_loss: its default (False) is what we
    # want, a job in flight when the broker goes keeps running and is acknowledged later.
    warnings.filterwarnings("ignore", category=CPendingDeprecationWarning)
    filters = {name: _Quiet(prefixes) for name, prefixes in QUIET.items()}
    filters[READY_LOGGER] = _Quiet(suffix=" ready.")
    filters[WARNINGS_LOGGER] = _Quiet()
    for name, quiet in filters.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Quiet) for f in logger.filters):
            logger.addFilter(quiet)


def safe_url(url: str) -> str:
    """A connection URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:**@" if parts.username else ":**@"
    return urlunsplit(parts._replace(netloc=user + host))


def announce_when_ready(label: str, **fields: Any) -> None:
    """Log one line when the Celery consumer is ready: ``<label> started: pid …, …``.

    Later readies of the same process (the consumer restarted after a broker failure,
    ``inference.celery_runner``) say so instead.
    """
    from celery.signals import worker_ready

    started = threading.Event()

    def ready(sender: Any = None, **kwargs: Any) -> None:
        if started.is_set():
            log.warning("%s: the Celery consumer is consuming again", label)
            return
        started.set()
        details = {"pid": os.getpid(), **fields}
        controller = getattr(sender, "controller", None)
        if controller is not None and "concurrency" not in details:
            details["concurrency"] = controller.concurrency
        app = getattr(sender, "app", None)
        if app is not None:
            details.setdefault(
                "queues", ",".join(sorted(app.amqp.queues.consume_from or app.amqp.queues))
            )
            details.setdefault("broker", safe_url(app.conf.broker_url or ""))
        log.info("%s started: %s", label, ", ".join(f"{k} {v}" for k, v in details.items()))

    worker_ready.connect(ready, weak=False)


class RedisWatch:
    """Pings each Redis this process depends on; one log line per lost / back change.

    ``urls``: connection name → URL ("Redis" for REDIS_URL, "broker" for a broker of
    its own; a broker on the same URL is the same server and is watched once). Each
    outage that ends is counted in ``broker_disconnects{process, model, connection}``.
    """

    def __init__(
        self,
        process: str,
        urls: dict[str, str],
        counters_url: str,
        model: str = "",
        interval_s: float = 1.0,
    ) -> None:
        self.process, self.model, self.interval = process, model, interval_s
        seen: dict[str, str] = {}
        for name, url in urls.items():
            if url and url not in seen.values() and urlsplit(url).scheme in REDIS_SCHEMES:
                seen[name] = url
        self.urls = seen
        self._clients = {name: _client(url, interval_s) for name, url in seen.items()}
        self._counters = _client(counters_url, interval_s)
        self.lost_since: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="redis-watch", daemon=True)

    def start(self) -> RedisWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def check(self) -> None:
        """Ping each server once, logging and counting state changes."""
        for name, client in self._clients.items():
            try:
                client.ping()
            except Exception as exc:  # noqa: BLE001 (any failure to answer is "lost")
                if name not in self.lost_since:
                    self.lost_since[name] = time.monotonic()
                    log.warning(
                        "%s: lost %s at %s (%s); retrying every %.0f s",
                        self.process_label,
                        name,
                        safe_url(self.urls[name]),
                        _reason(exc),
                        max(1.0, self.interval),
                    )
                continue
            since = self.lost_since.pop(name, None)
            if since is not None:
                log.warning(
                    "%s: %s back after %.1f s", self.process_label, name, time.monotonic() - since
                )
                counters.incr(
                    self._counters,
                    BROKER_DISCONNECTS,
                    process=self.process,
                    model=self.model,
                    connection=name.lower(),
                )

    @property
    def process_label(self) -> str:
        return f"{self.process} {self.model}".strip()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.check()
            self._stop.wait(self.interval)


REDIS_SCHEMES = ("redis", "rediss", "unix")


def _client(url: str, interval_s: float) -> redis.Redis:
    timeout = max(0.5, min(2.0, interval_s))
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().rstrip(".") or type(exc).__name__
    return text.splitlines()[0][:200]
