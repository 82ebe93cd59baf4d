"""Alert metrics; the names are relied on by the Grafana dashboards and the
Prometheus rules: keep them."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

FIRING = Gauge(
    "emissions_alerts_firing",
    "Open alerts (firing or acknowledged) by rule and site.",
    ["rule", "site"],
)
NOTIFICATIONS = Counter(
    "emissions_alerts_notifications_total",
    "Notification attempts by channel (mqtt, webhook, alertmanager) and result "
    "(success, failure: one failed try, dead_letter: given up).",
    ["channel", "result"],
)
LAST_EVALUATION = Gauge(
    "emissions_alerts_last_evaluation_timestamp_seconds",
    "Unix time the evaluator last finished evaluating every site.",
)

for _channel in ("mqtt", "webhook", "alertmanager"):
    for _result in ("success", "failure", "dead_letter"):
        NOTIFICATIONS.labels(_channel, _result)
