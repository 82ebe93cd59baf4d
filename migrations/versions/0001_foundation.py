"""Foundation schema: park configuration, raw readings, quarantine, rollups, alerts, API keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

METER_KINDS = "('electricity', 'water', 'wastewater', 'natural_gas', 'diesel', 'lpg', 'solar')"

UPGRADE = f"""
CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE sites (
    id          text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]+$'),
    name        text NOT NULL,
    timezone    text NOT NULL,
    active      boolean NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE enterprises (
    id          text PRIMARY KEY,
    site_id     text NOT NULL REFERENCES sites (id),
    name        text NOT NULL,
    industry    text NOT NULL,
    gateway     text NOT NULL,
    active      boolean NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX enterprises_site ON enterprises (site_id);

CREATE TABLE emission_factors (
    key          text PRIMARY KEY,
    unit         text NOT NULL,
    description  text NOT NULL DEFAULT '',
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per published value; hourly rows reference the value that produced them.
CREATE TABLE emission_factor_values (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    factor_key       text NOT NULL REFERENCES emission_factors (key),
    valid_from       timestamptz NOT NULL,
    published_at     timestamptz,
    kgco2e_per_unit  double precision NOT NULL CHECK (kgco2e_per_unit >= 0),
    source           text NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (factor_key, valid_from)
);

CREATE TABLE meters (
    id               text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.-]+$'),
    site_id          text NOT NULL REFERENCES sites (id),
    enterprise_id    text NOT NULL REFERENCES enterprises (id),
    kind             text NOT NULL CHECK (kind IN {METER_KINDS}),
    unit             text NOT NULL,
    reading          text NOT NULL CHECK (reading IN ('counter', 'delta')),
    rollover         double precision CHECK (rollover > 0),
    interval_s       integer CHECK (interval_s > 0),
    max_gap_s        integer NOT NULL DEFAULT 3600 CHECK (max_gap_s > 0),
    factor_key       text NOT NULL REFERENCES emission_factors (key),
    -- Sub-meters measure part of their parent; totals leave them out.
    parent_id        text REFERENCES meters (id) DEFERRABLE INITIALLY DEFERRED,
    commissioned_at  timestamptz NOT NULL,
    description      text NOT NULL DEFAULT '',
    active           boolean NOT NULL DEFAULT true,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((reading = 'delta') = (interval_s IS NOT NULL)),
    CHECK (reading = 'counter' OR rollover IS NULL)
);
CREATE INDEX meters_site ON meters (site_id);
CREATE INDEX meters_enterprise ON meters (enterprise_id);

CREATE TABLE roadmaps (
    site_id         text PRIMARY KEY REFERENCES sites (id),
    baseline_year   integer NOT NULL,
    baseline_tco2e  double precision NOT NULL CHECK (baseline_tco2e >= 0),
    note            text NOT NULL DEFAULT '',
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE roadmap_milestones (
    site_id        text NOT NULL REFERENCES roadmaps (site_id) ON DELETE CASCADE,
    year           integer NOT NULL,
    reduction_pct  double precision NOT NULL CHECK (reduction_pct BETWEEN 0 AND 100),
    PRIMARY KEY (site_id, year)
);

-- Explicit register swaps; the engine never guesses a replacement from the data.
CREATE TABLE meter_replacements (
    meter_id         text NOT NULL REFERENCES meters (id),
    replaced_at      timestamptz NOT NULL,
    old_final_value  double precision NOT NULL,
    new_start_value  double precision NOT NULL,
    note             text NOT NULL DEFAULT '',
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (meter_id, replaced_at)
);

-- Raw readings, exactly once per (meter, ts). No foreign key to meters: the
-- ingestor only writes known meters, and a key lookup per row halves COPY speed.
CREATE TABLE readings (
    meter_id     text NOT NULL,
    ts           timestamptz NOT NULL,
    value        double precision NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
SELECT create_hypertable('readings', 'ts', chunk_time_interval => INTERVAL '1 day',
                         create_default_indexes => false);
CREATE UNIQUE INDEX readings_meter_ts ON readings (meter_id, ts);

-- What was kept out, byte for byte, and why.
CREATE TABLE quarantine (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    topic        text NOT NULL,
    site_id      text,
    meter_id     text,
    reason       text NOT NULL,
    detail       text NOT NULL DEFAULT '',
    payload      bytea NOT NULL
);
CREATE INDEX quarantine_site_received ON quarantine (site_id, received_at DESC);

-- A different value for an already stored (meter, ts): kept out, recorded once.
CREATE TABLE reading_conflicts (
    meter_id        text NOT NULL,
    ts              timestamptz NOT NULL,
    stored_value    double precision NOT NULL,
    rejected_value  double precision NOT NULL,
    topic           text NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (meter_id, ts, rejected_value)
);

-- Glitches, resets, wraps and long gaps found by the emissions engine.
CREATE TABLE data_quality_events (
    meter_id  text NOT NULL,
    ts        timestamptz NOT NULL,
    kind      text NOT NULL CHECK (kind IN ('glitch', 'reset', 'wrap', 'long_gap', 'replacement')),
    detail    jsonb NOT NULL DEFAULT '{{}}',
    PRIMARY KEY (meter_id, ts, kind)
);

-- Consumption and CO2e per meter per UTC hour, recomputed from raw readings.
CREATE TABLE hourly_emissions (
    meter_id         text NOT NULL,
    hour             timestamptz NOT NULL,
    site_id          text NOT NULL,
    enterprise_id    text NOT NULL,
    kind             text NOT NULL,
    scope            smallint NOT NULL CHECK (scope IN (1, 2, 3)),
    consumption      double precision NOT NULL,
    unit             text NOT NULL,
    co2e_kg          double precision NOT NULL,
    avoided_co2e_kg  double precision NOT NULL DEFAULT 0,
    estimated        boolean NOT NULL,
    factor_value_id  bigint REFERENCES emission_factor_values (id),
    computed_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (hour = date_trunc('hour', hour, 'UTC'))
);
SELECT create_hypertable('hourly_emissions', 'hour', chunk_time_interval => INTERVAL '90 days',
                         create_default_indexes => false);
CREATE UNIQUE INDEX hourly_emissions_meter_hour ON hourly_emissions (meter_id, hour);
CREATE INDEX hourly_emissions_site_hour ON hourly_emissions (site_id, hour);

CREATE TABLE alerts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule             text NOT NULL,
    subject          text NOT NULL,
    site_id          text NOT NULL REFERENCES sites (id),
    enterprise_id    text REFERENCES enterprises (id),
    state            text NOT NULL CHECK (state IN ('firing', 'acknowledged', 'resolved')),
    summary          text NOT NULL DEFAULT '',
    value            double precision,
    threshold        double precision,
    started_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    resolved_at      timestamptz
);
-- The database, not the evaluator, guarantees one open alert per (rule, subject).
CREATE UNIQUE INDEX alerts_one_open ON alerts (rule, subject) WHERE state <> 'resolved';
CREATE INDEX alerts_site_state ON alerts (site_id, state);

CREATE TABLE alert_events (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id  bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    at        timestamptz NOT NULL DEFAULT now(),
    state     text NOT NULL,
    detail    text NOT NULL DEFAULT ''
);

-- API keys are random 256-bit tokens, so a SHA-256 digest is a safe hash.
CREATE TABLE api_keys (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           text NOT NULL UNIQUE,
    key_hash       text NOT NULL UNIQUE,
    role           text NOT NULL CHECK (role IN ('admin', 'operator', 'tenant')),
    enterprise_id  text REFERENCES enterprises (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    last_used_at   timestamptz,
    CHECK ((role = 'tenant') = (enterprise_id IS NOT NULL))
);
"""

DOWNGRADE = """
DROP TABLE api_keys;
DROP TABLE alert_events;
DROP TABLE alerts;
DROP TABLE hourly_emissions;
DROP TABLE data_quality_events;
DROP TABLE reading_conflicts;
DROP TABLE quarantine;
DROP TABLE readings;
DROP TABLE meter_replacements;
DROP TABLE roadmap_milestones;
DROP TABLE roadmaps;
DROP TABLE meters;
DROP TABLE emission_factor_values;
DROP TABLE emission_factors;
DROP TABLE enterprises;
DROP TABLE sites;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    # The timescaledb extension stays: other databases' objects and the
    # instance's template may rely on it, and dropping it needs a superuser.
    op.execute(DOWNGRADE)
