"""Enterprise and site totals per hour and kind, kept by the engine.

Sub-meters are left out (their parent counts them) and consumption is in each
kind's canonical unit, so a site-year of totals is 8,760 x kinds rows instead of
8,760 x meters. Existing meter-hours are summed into the new tables on upgrade.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Frozen copy of core.units.canonical_scales() as of this revision.
SCALES = """(VALUES
    ('electricity', 'Wh', 0.001, 'kWh'), ('electricity', 'kWh', 1.0, 'kWh'),
    ('electricity', 'MWh', 1000.0, 'kWh'),
    ('solar', 'Wh', 0.001, 'kWh'), ('solar', 'kWh', 1.0, 'kWh'), ('solar', 'MWh', 1000.0, 'kWh'),
    ('water', 'L', 0.001, 'm3'), ('water', 'm3', 1.0, 'm3'),
    ('wastewater', 'L', 0.001, 'm3'), ('wastewater', 'm3', 1.0, 'm3'),
    ('natural_gas', 'L', 0.001, 'm3'), ('natural_gas', 'm3', 1.0, 'm3'),
    ('diesel', 'L', 1.0, 'L'), ('diesel', 'm3', 1000.0, 'L'),
    ('lpg', 'kg', 1.0, 'kg'), ('lpg', 't', 1000.0, 'kg')
) AS s(kind, unit, k, canonical)"""

TOTALS = """
    scope                  smallint NOT NULL CHECK (scope IN (1, 2, 3)),
    unit                   text NOT NULL,
    consumption            double precision NOT NULL,
    co2e_kg                double precision NOT NULL,
    avoided_co2e_kg        double precision NOT NULL,
    meter_hours            integer NOT NULL,
    estimated_meter_hours  integer NOT NULL,
    CHECK (hour = date_trunc('hour', hour, 'UTC'))"""


def upgrade() -> None:
    op.execute(f"""
CREATE TABLE enterprise_hourly (
    enterprise_id  text NOT NULL,
    site_id        text NOT NULL,
    hour           timestamptz NOT NULL,
    kind           text NOT NULL,{TOTALS},
    PRIMARY KEY (enterprise_id, hour, kind)
);
CREATE INDEX enterprise_hourly_site_hour ON enterprise_hourly (site_id, hour);

CREATE TABLE site_hourly (
    site_id  text NOT NULL,
    hour     timestamptz NOT NULL,
    kind     text NOT NULL,{TOTALS},
    PRIMARY KEY (site_id, hour, kind)
);

-- One counter per enterprise and UTC day, bumped whenever the engine rewrites that
-- day's totals: readers that keep rendered days (the API) revalidate them with one
-- small query instead of re-reading the totals.
CREATE TABLE totals_versions (
    enterprise_id  text NOT NULL,
    day            timestamptz NOT NULL CHECK (day = date_trunc('day', day, 'UTC')),
    site_id        text NOT NULL,
    version        bigint NOT NULL,
    PRIMARY KEY (enterprise_id, day)
);
CREATE INDEX totals_versions_site_day ON totals_versions (site_id, day);

-- The engine recomputes an enterprise's hours after rewriting one of its meters.
CREATE INDEX hourly_emissions_enterprise_hour ON hourly_emissions (enterprise_id, hour);

INSERT INTO enterprise_hourly
SELECT h.enterprise_id, min(h.site_id), h.hour, h.kind, min(h.scope), min(s.canonical),
       sum(h.consumption * s.k), sum(h.co2e_kg), sum(h.avoided_co2e_kg), count(*),
       count(*) FILTER (WHERE h.estimated)
FROM hourly_emissions h JOIN meters m ON m.id = h.meter_id
JOIN {SCALES} ON s.kind = h.kind AND s.unit = h.unit
WHERE m.parent_id IS NULL
GROUP BY h.enterprise_id, h.hour, h.kind;

INSERT INTO site_hourly
SELECT site_id, hour, kind, min(scope), min(unit), sum(consumption), sum(co2e_kg),
       sum(avoided_co2e_kg), sum(meter_hours), sum(estimated_meter_hours)
FROM enterprise_hourly GROUP BY site_id, hour, kind;

INSERT INTO totals_versions
SELECT DISTINCT enterprise_id, date_trunc('day', hour, 'UTC'), site_id, 1 FROM enterprise_hourly;
""")


def downgrade() -> None:
    op.execute("""
DROP INDEX hourly_emissions_enterprise_hour;
DROP TABLE totals_versions;
DROP TABLE site_hourly;
DROP TABLE enterprise_hourly;
""")
