"""Alerts (SPEC section 7): rules evaluated on a schedule, one open alert per
(rule, subject) kept by the store, and notifications over MQTT, signed webhooks
and Alertmanager delivered from an outbox. See docs/alerts.md."""
