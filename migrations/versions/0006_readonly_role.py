"""A read-only role for Grafana, and roadmap budgets in SQL for its dashboards.

`emissions_reader` is a NOLOGIN group role: SELECT on the tables the dashboards
read, nothing else (no api_keys, no quarantined payloads, no DDL, no writes).
Grafana logs in as a member of it (`emissions_grafana`, created by
scripts/setup.sh locally and by docker/timescaledb/010_emissions.sh in compose).
Roles are cluster-wide and shared by every database of the instance (test
databases too), so the role is created only when missing, and the downgrade
revokes this database's grants without dropping it.

`roadmap_annual_target_tco2e(site, year)` and `roadmap_budget_tco2e(site, start,
end)` are the SQL twins of core/emissions/roadmap.py (SPEC section 5): the
budget of a window is the sum over its hours of the year's target / hours in
that year, calendar years beginning at midnight in the site's time zone.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ROLE = "emissions_reader"

TABLES = (
    "sites, enterprises, meters, meter_replacements, emission_factors, emission_factor_values, "
    "roadmaps, roadmap_milestones, readings, reading_conflicts, data_quality_events, "
    "hourly_emissions, enterprise_hourly, site_hourly, alerts, alert_events, "
    "dirty_meter_hours, meter_engine_state, alert_conditions, alert_outbox"
)
# Column grants leave out what only admins may see: quarantined raw payloads (the API
# shows them to admins only) and notification targets and errors (webhook URLs can
# carry tokens). Rule configuration and dead letters are not granted at all.
COLUMNS = {
    "quarantine": "id, received_at, topic, site_id, meter_id, reason, detail",
    "alert_deliveries": "id, outbox_id, channel, state, attempts, next_attempt_at, delivered_at",
}

CREATE_ROLE = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
        CREATE ROLE {ROLE} NOLOGIN;
    END IF;
EXCEPTION
    -- Another database of the instance created it at the same moment.
    WHEN duplicate_object OR unique_violation THEN NULL;
    WHEN insufficient_privilege THEN
        RAISE EXCEPTION 'role {ROLE} does not exist and % may not create it', current_user
            USING HINT = 'create it as a superuser first: CREATE ROLE {ROLE} NOLOGIN '
                         '(scripts/setup.sh and docker/timescaledb/010_emissions.sh do)';
END
$$;
"""

FUNCTIONS = """
CREATE FUNCTION roadmap_reduction_pct(p_site text, p_year integer)
RETURNS double precision LANGUAGE sql STABLE AS $$
    -- Knots: 0 % at the baseline year, then the milestones; linear in between,
    -- the last milestone holds afterwards. NULL when the site has no roadmap.
    WITH knots AS (
        SELECT baseline_year AS year, 0.0::double precision AS pct
        FROM roadmaps WHERE site_id = p_site
        UNION ALL
        SELECT year, reduction_pct FROM roadmap_milestones WHERE site_id = p_site
    ), segments AS (
        SELECT year AS y0, pct AS p0, lead(year) OVER w AS y1, lead(pct) OVER w AS p1
        FROM knots WINDOW w AS (ORDER BY year)
    )
    SELECT CASE
        WHEN NOT EXISTS (SELECT FROM knots) THEN NULL
        WHEN p_year <= (SELECT min(year) FROM knots) THEN 0.0
        WHEN p_year > (SELECT max(year) FROM knots)
            THEN (SELECT pct FROM knots ORDER BY year DESC LIMIT 1)
        ELSE (SELECT p0 + (p1 - p0) * (p_year - y0) / (y1 - y0)
              FROM segments WHERE p_year > y0 AND p_year <= y1)
    END
$$;

CREATE FUNCTION roadmap_annual_target_tco2e(p_site text, p_year integer)
RETURNS double precision LANGUAGE sql STABLE AS $$
    SELECT r.baseline_tco2e * (100.0 - roadmap_reduction_pct(p_site, p_year)) / 100.0
    FROM roadmaps r WHERE r.site_id = p_site
$$;

CREATE FUNCTION roadmap_budget_tco2e(p_site text, p_start timestamptz, p_end timestamptz)
RETURNS double precision LANGUAGE sql STABLE AS $$
    -- Per calendar year of the site: target x overlap / year length (exact to the
    -- microsecond, so a partial hour counts pro rata). 0 for an empty window.
    SELECT CASE WHEN NOT EXISTS (SELECT FROM roadmaps WHERE site_id = p_site) THEN NULL
    ELSE coalesce((
        SELECT sum(roadmap_annual_target_tco2e(p_site, y.year)
                   * extract(epoch FROM least(p_end, b.ends) - greatest(p_start, b.begins))
                   / extract(epoch FROM b.ends - b.begins))
        FROM sites s
        CROSS JOIN LATERAL generate_series(
            extract(year FROM p_start AT TIME ZONE s.timezone)::integer,
            extract(year FROM p_end AT TIME ZONE s.timezone)::integer) AS y(year)
        CROSS JOIN LATERAL (SELECT make_timestamptz(y.year, 1, 1, 0, 0, 0, s.timezone) AS begins,
                                   make_timestamptz(y.year + 1, 1, 1, 0, 0, 0, s.timezone) AS ends) b
        WHERE s.id = p_site AND least(p_end, b.ends) > greatest(p_start, b.begins)
    ), 0.0) END
$$;
"""


def upgrade() -> None:
    op.execute(CREATE_ROLE)
    op.execute(FUNCTIONS)
    op.execute(f"""
GRANT USAGE ON SCHEMA public TO {ROLE};
GRANT SELECT ON {TABLES} TO {ROLE};
""")
    for table, columns in COLUMNS.items():
        op.execute(f"GRANT SELECT ({columns}) ON {table} TO {ROLE}")


def downgrade() -> None:
    for table, columns in COLUMNS.items():
        op.execute(f"REVOKE SELECT ({columns}) ON {table} FROM {ROLE}")
    op.execute(f"""
REVOKE SELECT ON {TABLES} FROM {ROLE};
REVOKE USAGE ON SCHEMA public FROM {ROLE};
DROP FUNCTION roadmap_budget_tco2e(text, timestamptz, timestamptz);
DROP FUNCTION roadmap_annual_target_tco2e(text, integer);
DROP FUNCTION roadmap_reduction_pct(text, integer);
""")
