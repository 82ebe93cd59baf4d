"""Notification channels: retained MQTT, signed webhooks, Alertmanager v2."""


class DeliveryError(Exception):
    """One failed try to deliver a notification; the outbox retries it."""
