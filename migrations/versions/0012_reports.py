"""Reports (SPEC section 8): production meters, TOE conversion, uncertainty inputs,
allocated intensities and frozen, hash-chained submissions.

Production output is a meter kind like any other (counter or delta) priced with a
zero factor, so the engine computes its hourly quantity unchanged; it belongs to
no GHG scope, written as scope 0. Accuracy classes (meters) and uncertainties
(factors) are the inputs of the IPCC approach-1 uncertainty of an inventory.

A submission's `content_hash` is sha256(previous_hash + canonical JSON); the
unique index on (chain, previous_hash) lets only one submission follow another,
so two concurrent submissions cannot fork an enterprise's chain.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

OLD_KINDS = "('electricity', 'water', 'wastewater', 'natural_gas', 'diesel', 'lpg', 'solar')"
NEW_KINDS = (
    "('electricity', 'water', 'wastewater', 'natural_gas', 'diesel', 'lpg', 'solar', "
    "'production', 'production_pcs')"
)
SCOPED = ("hourly_emissions", "enterprise_hourly", "site_hourly")


def _scope_checks(values: str) -> str:
    return "\n".join(
        f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {t}_scope_check;\n"
        f"ALTER TABLE {t} ADD CONSTRAINT {t}_scope_check CHECK (scope IN {values});"
        for t in SCOPED
    )


def upgrade() -> None:
    op.execute(f"""
ALTER TABLE meters DROP CONSTRAINT IF EXISTS meters_kind_check;
ALTER TABLE meters ADD CONSTRAINT meters_kind_check CHECK (kind IN {NEW_KINDS});
{_scope_checks("(0, 1, 2, 3)")}

ALTER TABLE meters ADD COLUMN accuracy_pct double precision CHECK (accuracy_pct >= 0);
ALTER TABLE emission_factors ADD COLUMN uncertainty_pct double precision
    CHECK (uncertainty_pct >= 0);

-- The ministry's conversion of each energy carrier to tonnes of oil equivalent.
CREATE TABLE toe_factors (
    kind          text PRIMARY KEY,
    unit          text NOT NULL,
    toe_per_unit  double precision NOT NULL CHECK (toe_per_unit >= 0),
    source        text NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Intensity-based allowances: tCO2e per unit of product, per enterprise and year.
CREATE TABLE production_allocations (
    enterprise_id    text NOT NULL REFERENCES enterprises (id),
    year             integer NOT NULL,
    tco2e_per_unit   double precision NOT NULL CHECK (tco2e_per_unit >= 0),
    unit             text NOT NULL,
    source           text NOT NULL DEFAULT '',
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (enterprise_id, year)
);

CREATE TABLE report_submissions (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id        text NOT NULL REFERENCES sites (id),
    enterprise_id  text REFERENCES enterprises (id),
    -- The enterprise's id, or 'site:<id>' for the park's own inventory.
    chain          text NOT NULL,
    first_year     integer NOT NULL,
    years          integer NOT NULL CHECK (years BETWEEN 1 AND 2),
    submitted_at   timestamptz NOT NULL DEFAULT now(),
    submitted_by   text NOT NULL,
    -- The canonical JSON, byte for byte as hashed (jsonb would renormalise numbers).
    document       text NOT NULL,
    content_hash   text NOT NULL UNIQUE,
    previous_hash  text
);
CREATE UNIQUE INDEX report_submissions_chain_link
    ON report_submissions (chain, coalesce(previous_hash, ''));
CREATE INDEX report_submissions_site ON report_submissions (site_id, submitted_at);
""")


def downgrade() -> None:
    op.execute(f"""
DROP TABLE report_submissions;
DROP TABLE production_allocations;
DROP TABLE toe_factors;
ALTER TABLE emission_factors DROP COLUMN uncertainty_pct;
ALTER TABLE meters DROP COLUMN accuracy_pct;
DELETE FROM hourly_emissions WHERE scope = 0;
DELETE FROM enterprise_hourly WHERE scope = 0;
DELETE FROM site_hourly WHERE scope = 0;
{_scope_checks("(1, 2, 3)")}
ALTER TABLE meters DROP CONSTRAINT meters_kind_check;
ALTER TABLE meters ADD CONSTRAINT meters_kind_check CHECK (kind IN {OLD_KINDS});
""")
