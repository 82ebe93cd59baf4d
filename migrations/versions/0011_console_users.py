"""People who sign in to the console (issue 16): argon2 password hashes, the same
roles as API keys (admin, operator, tenant of one enterprise) and a language each.

Users are disabled, never deleted, so an acknowledgement's `acknowledged_by` always
names someone who existed.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
CREATE TABLE console_users (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username       text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    password_hash  text NOT NULL,
    role           text NOT NULL CHECK (role IN ('admin', 'operator', 'tenant')),
    enterprise_id  text REFERENCES enterprises (id),
    locale         text NOT NULL DEFAULT 'vi' CHECK (locale IN ('vi', 'en')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    disabled_at    timestamptz,
    CHECK ((role = 'tenant') = (enterprise_id IS NOT NULL))
);
"""
    )


def downgrade() -> None:
    op.execute("DROP TABLE console_users")
