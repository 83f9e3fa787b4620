"""project pull policies: content trust required, a severity threshold, unscanned images, an allowlist

Four columns on ``projects`` (``auth.model.ProjectPolicy``), each defaulting to "demand nothing" so that
existing projects keep behaving as before the upgrade.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("projects", sa.Column("content_trust", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("projects", sa.Column("block_severity", sa.String(length=16), nullable=True))
    op.add_column("projects", sa.Column("block_unscanned", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("projects", sa.Column("allowlist", sa.Text(), nullable=False, server_default="[]"))


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+, PostgreSQL), not a batch table copy: on SQLite the copy
    # drops and recreates ``projects``, and with foreign keys on that cascades to every membership and robot.
    for column in ("allowlist", "block_unscanned", "block_severity", "content_trust"):
        op.execute(f"ALTER TABLE projects DROP COLUMN {column}")
