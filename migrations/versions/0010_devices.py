"""Device payloads (SPEC section 3.1): each mapped device field, by its native topic.

Ingest routes a message on a vendor topic (ChirpStack, Shelly, Tasmota, Neuron) by
looking its topic up here; the rows are written by `config apply` from the park
file's `protocol` and `devices`. A removed mapping is deleted (readings already
stored keep their meter); the gateway that may publish the topic is the one of the
enterprise that declared it, which the ownership rule checks against the meter.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-06
"""

from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE gateway_devices (
    topic          text NOT NULL,
    field          text NOT NULL,
    protocol       text NOT NULL,
    device         text NOT NULL,
    meter_id       text NOT NULL REFERENCES meters (id),
    gateway_id     text NOT NULL,
    enterprise_id  text NOT NULL REFERENCES enterprises (id),
    site_id        text NOT NULL REFERENCES sites (id),
    unit           text,
    timezone       text,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, field)
);
CREATE INDEX gateway_devices_site ON gateway_devices (site_id);
""")


def downgrade() -> None:
    op.execute("DROP TABLE gateway_devices")
