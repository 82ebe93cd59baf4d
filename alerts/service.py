"""The alerts service: an evaluation loop and a delivery worker in one process.

The evaluator runs every `alerts_evaluation_interval_s`; the delivery worker
drains the outbox every second (and right after each evaluation), so a slow or
failing notification channel never delays an evaluation. Two services may run
at once (see `alerts.state` and `alerts.outbox`).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from alerts.evaluate import evaluate
from alerts.outbox import Notifier, drain, resend_open_to_alertmanager
from core.logs import get_logger
from core.settings import Settings

log = get_logger("alerts")


def evaluation_loop(
    engine: Engine, settings: Settings, stop: threading.Event, wake: threading.Event
) -> None:
    interval = settings.alerts_evaluation_interval_s
    while not stop.is_set():
        started = time.monotonic()
        try:
            result = evaluate(engine, datetime.now(UTC), repeat_s=settings.alerts_repeat_s)
            log.info(
                "alerts_evaluated",
                checks=result.checks,
                fired=result.fired,
                resolved=result.resolved,
                repeated=result.repeated,
                seconds=round(time.monotonic() - started, 3),
            )
            wake.set()
        except DBAPIError as exc:  # the database may be restarting: retry, say why
            log.warning("alerts_evaluation_failed", error=str(exc).strip()[:200])
        stop.wait(max(0.0, interval - (time.monotonic() - started)))


def delivery_loop(
    engine: Engine, notifier: Notifier, stop: threading.Event, wake: threading.Event
) -> None:
    last_resend = 0.0
    while not stop.is_set():
        try:
            drain(engine, notifier)
            if time.monotonic() - last_resend >= notifier.settings.alerts_evaluation_interval_s:
                resend_open_to_alertmanager(engine, notifier)
                last_resend = time.monotonic()
        except DBAPIError as exc:
            log.warning("alerts_delivery_failed", error=str(exc).strip()[:200])
        wake.wait(1.0)
        wake.clear()


def run(engine: Engine, notifier: Notifier, stop: threading.Event) -> None:
    """Both loops until `stop` is set; returns when either loop ends."""
    wake = threading.Event()
    worker = threading.Thread(
        target=delivery_loop,
        args=(engine, notifier, stop, wake),
        name="alerts-delivery",
        daemon=True,
    )
    worker.start()
    try:
        evaluation_loop(engine, notifier.settings, stop, wake)
    finally:
        stop.set()
        wake.set()
        worker.join(timeout=30)
