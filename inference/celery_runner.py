"""Run a Celery worker that outlives its broker connection.

Celery 5.7 with kombu's Redis transport can stop the whole worker when the broker
vanishes mid-task (kombu fails while restoring unacknowledged messages, or while
reading from the dead socket). The process and what it holds (a loaded model, open
connections) are fine; only the consumer gave up. So the consumer is started again in
the same process, until a real shutdown (SIGTERM / SIGINT) was asked for.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery.signals import worker_shutting_down
from celery.worker import state

log = logging.getLogger(__name__)


def run_worker(app: Any, argv: list[str], on_shutdown: Any = None) -> None:
    """``app.worker_main(argv)``, started again whenever it stops without being asked to."""
    stopping = threading.Event()

    def shutting_down(**kwargs: object) -> None:
        stopping.set()
        if on_shutdown is not None:
            on_shutdown()

    worker_shutting_down.connect(shutting_down, weak=False)
    while True:
        try:
            app.worker_main(argv)
            code: object = 0
        except SystemExit as exit_:
            code = exit_.code
        # A shutdown asked for by a signal: SIGTERM / SIGINT (worker_shutting_down), or
        # SIGHUP, whose restart-by-exec Celery arranges itself (it sets should_stop only).
        if stopping.is_set() or state.should_stop is not None or state.should_terminate is not None:
            return
        log.error("the Celery consumer stopped (exit %s); starting it again", code)
        time.sleep(1.0)
