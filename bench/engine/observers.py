"""What bench.engine watches during the live load, and the figures it draws from
that: the probe meter's hourly sum (freshness) and the dirty backlog with the
engine's own counters."""

from __future__ import annotations

import bisect
import itertools
import math
import threading
import time
from typing import Any

from bench.publishers.process import PublishReport
from bench.report import pct
from bench.stack.database import Conn, db_connect, scalar
from bench.stack.services import Service
from core.settings import Settings


class Poller(threading.Thread):
    """Runs `sample(conn)` every `interval` s on its own autocommit connection until
    stopped; a failure is kept in `error` (the run then reports it)."""

    def __init__(self, name: str, settings: Settings, interval: float) -> None:
        super().__init__(name=name, daemon=True)
        self.settings = settings
        self.interval = interval
        self.error = ""
        self._stop_event = threading.Event()

    def sample(self, conn: Conn) -> None:
        raise NotImplementedError

    def run(self) -> None:
        try:
            with db_connect(self.settings) as conn:
                while not self._stop_event.is_set():
                    t0 = time.time()
                    self.sample(conn)
                    self._stop_event.wait(max(0.0, self.interval - (time.time() - t0)))
        except Exception as exc:
            self.error = f"{self.name}: {type(exc).__name__}: {exc}"

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


class ProbeObserver(Poller):
    """The probe meter's summed hourly consumption, with the wall-clock time the
    answer came back (an index lookup on hourly_emissions (meter_id, hour))."""

    SQL = "SELECT sum(consumption) FROM hourly_emissions WHERE meter_id = %s"

    def __init__(self, settings: Settings, meter: str, interval: float) -> None:
        super().__init__("probe-observer", settings, interval)
        self.meter = meter
        self.times: list[float] = []
        self.sums: list[float] = []
        self.query_s: list[float] = []

    def sample(self, conn: Conn) -> None:
        t0 = time.time()
        row = conn.execute(self.SQL, (self.meter,), prepare=True).fetchone()
        t1 = time.time()
        self.times.append(t1)
        self.sums.append(float(row[0]) if row is not None and row[0] is not None else -math.inf)
        self.query_s.append(t1 - t0)

    def latest(self) -> float:
        return self.sums[-1] if self.sums else -math.inf


class BacklogMonitor(Poller):
    """The dirty backlog (count(*) of dirty_meter_hours) and the engine's own
    counters from its /metrics, for the time series in the JSON."""

    def __init__(self, settings: Settings, engine_proc: Service, interval: float) -> None:
        super().__init__("backlog-monitor", settings, interval)
        self.engine_proc = engine_proc
        self.samples: list[dict[str, float]] = []

    def sample(self, conn: Conn) -> None:
        t0 = time.time()
        dirty = int(scalar(conn, "SELECT count(*) FROM dirty_meter_hours"))
        m = self.engine_proc.metrics()
        self.samples.append(
            {
                "t": t0,
                "dirty": dirty,
                "refreshes": m.get("emissions_engine_refresh_duration_seconds_count", 0.0),
                "refresh_s": m.get("emissions_engine_refresh_duration_seconds_sum", 0.0),
                "meter_hours": m.get("emissions_engine_hour_rows_written_total", 0.0),
            }
        )

    def dirty_now(self) -> int | None:
        return int(self.samples[-1]["dirty"]) if self.samples else None


def engine_histogram(metrics: dict[str, float]) -> dict[str, float]:
    """The engine's refresh-duration histogram from its /metrics, in histogram_state's shape."""
    name = "emissions_engine_refresh_duration_seconds"
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if key.startswith(f'{name}_bucket{{le="'):
            out["le=" + key.split('"')[1]] = value
        elif key == f"{name}_count":
            out["count"] = value
        elif key == f"{name}_sum":
            out["sum"] = value
    return out


def freshness_figures(
    report: PublishReport, observer: ProbeObserver, received: dict[int, float], window_s: float
) -> dict[str, Any]:
    """Freshness of probe k (k >= 2; the first is the baseline): the first observation
    with sum >= k - 1 minus its publish time. Also publish-to-ingest-transaction-start
    from received_at (a lower bound of the ingest part), and freshness by publish time
    in windows of `window_s` (does it drift?)."""
    running: list[float] = []
    decreases = 0
    for s in observer.sums:
        decreases += bool(running) and s < running[-1] - 1e-9
        running.append(max(s, running[-1]) if running else s)
    fresh, ingest, engine_part = [], [], []
    windows: dict[int, list[float]] = {}
    unseen = 0
    for k, (published, ts_us) in enumerate(report.probes, start=1):
        if k == 1:
            continue
        i = bisect.bisect_left(running, k - 1 - 1e-9)
        if i >= len(running):
            unseen += 1
            continue
        f = observer.times[i] - published
        fresh.append(f)
        windows.setdefault(int((published - report.first_publish) // window_s), []).append(f)
        if ts_us in received:
            ingest.append(received[ts_us] - published)
            engine_part.append(f - ingest[-1])
    fresh.sort()
    ingest.sort()
    engine_part.sort()
    query_ms = sorted(1000 * q for q in observer.query_s)
    return {
        "probes": len(report.probes),
        "probes_measured": len(fresh),
        "probes_not_reflected": unseen,
        "observed_sum_decreased": decreases,
        "p50_s": pct(fresh, 0.5),
        "p90_s": pct(fresh, 0.9),
        "p99_s": pct(fresh, 0.99),
        "max_s": pct(fresh, 1.0),
        "mean_s": sum(fresh) / len(fresh) if fresh else math.nan,
        "ingest_txn_start_p50_s": pct(ingest, 0.5),
        "ingest_txn_start_p99_s": pct(ingest, 0.99),
        "after_ingest_txn_start_p50_s": pct(engine_part, 0.5),
        "after_ingest_txn_start_p99_s": pct(engine_part, 0.99),
        "by_window": [
            {
                "from_s": w * window_s,
                "probes": len(v),
                "p50_s": pct(sorted(v), 0.5),
                "max_s": max(v),
            }
            for w, v in sorted(windows.items())
        ],
        "observations": len(observer.times),
        "poll_query_ms_p50": pct(query_ms, 0.5),
        "poll_query_ms_p99": pct(query_ms, 0.99),
    }


def backlog_figures(samples: list[dict[str, float]], report: PublishReport) -> dict[str, Any]:
    """Dirty backlog during the load and the engine's work per sampling interval."""
    first, last = report.first_publish, report.last_publish
    during = [int(s["dirty"]) for s in samples if first <= s["t"] <= last]
    series = []
    for prev, s in itertools.pairwise(samples):
        n = s["refreshes"] - prev["refreshes"]
        busy = s["refresh_s"] - prev["refresh_s"]
        series.append(
            {
                "t_s": round(s["t"] - first, 3),
                "dirty": int(s["dirty"]),
                "refreshes": int(n),
                "mean_refresh_ms": round(1000 * busy / n, 2) if n else None,
                "busy_fraction": round(busy / max(s["t"] - prev["t"], 1e-9), 3),
                "hour_rows": int(s["meter_hours"] - prev["meter_hours"]),
            }
        )
    return {
        "dirty_backlog_max": max(during, default=None),
        "dirty_backlog_mean": sum(during) / len(during) if during else None,
        "backlog_series": series,
    }
