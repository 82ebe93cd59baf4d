"""Engine metrics: site-level labels only, never meter ids."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

METER_HOURS = Counter(
    "emissions_engine_hour_rows_written_total", "Meter-hour rows recomputed and written."
)
REFRESH_SECONDS = Histogram(
    "emissions_engine_refresh_duration_seconds",
    "Time to refresh one batch of dirty meters (one transaction).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
# Not "..._meter_hours": promtool reads "hours" as a unit that should be seconds.
DIRTY = Gauge("emissions_engine_dirty_marks", "Dirty meter-hour marks waiting to be recomputed.")
LAST_PASS = Gauge(
    "emissions_engine_last_pass_timestamp_seconds",
    "Unix time the engine last finished a pass over the dirty marks.",
)
LIVE_RATE = Gauge(
    "emissions_live_co2e_grams_per_second",
    "Current emission rate over the trailing hour, sub-meters excluded (base units:"
    " 1 g/s is 3.6 kg/h).",
    ["site"],
)
