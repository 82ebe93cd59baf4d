"""End-to-end delivery (SPEC section 3): each gateway's committed position.

A gateway that numbers its batches (`seq`, within an `epoch`) learns from the
retained `.../gateways/{gateway}/committed` topic up to which message everything
is committed or quarantined, and prunes its local buffer there. The position is
written in the same transaction as the readings it covers, so it can never run
ahead of the store, and an ingest restart resumes from it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE gateway_positions (
            site_id text NOT NULL,
            gateway_id text NOT NULL,
            epoch text NOT NULL,
            seq bigint NOT NULL CHECK (seq >= 0),
            committed_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (site_id, gateway_id, epoch)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE gateway_positions")
