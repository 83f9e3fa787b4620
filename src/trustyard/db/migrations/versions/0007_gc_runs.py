"""garbage-collection runs: when each ran, what started it, what it deleted and freed, and why it stopped

One row per run of ``registry.gc.GarbageCollector`` (``serve --gc-interval`` or ``trustyard gc``), inserted
when the run starts and completed when it ends, so the operations page and ``GET /api/v1/gc/runs`` show a run
that is still going (or whose process died) as well as finished ones.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 00:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gc_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("dry_run", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("manifests_deleted", sa.Integer(), server_default="0", nullable=False),
        sa.Column("blobs_deleted", sa.Integer(), server_default="0", nullable=False),
        sa.Column("bytes_freed", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("uploads_expired", sa.Integer(), server_default="0", nullable=False),
        sa.Column("orphan_files", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gc_runs")),
    )
    with op.batch_alter_table("gc_runs", schema=None) as batch_op:
        batch_op.create_index("ix_gc_runs_started_at", ["started_at"], unique=False)


def downgrade() -> None:
    op.drop_table("gc_runs")
