"""background scanning: the durable job queue, bills of materials by manifest digest, the re-check index

``scan_jobs`` is the queue the in-process workers take pushed manifests from (a job left ``running`` by a crash
is queued again at the next start); ``scan_reports`` keeps each image's inventory, SBOMs and findings by
manifest digest, so an image pushed to two repositories is indexed once; ``scan_packages`` maps the
(ecosystem, package) lookups of every stored inventory back to it, so that changed advisories re-check only
the inventories they can affect; ``scan_state`` remembers the vulnerability store generation re-checked up to.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 21:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scan_jobs",
        sa.Column("digest", sa.String(length=150), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("queued_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attach_pending", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_scan_jobs")),
    )
    with op.batch_alter_table("scan_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_scan_jobs_status", ["status", "queued_at"], unique=False)
    op.create_table(
        "scan_reports",
        sa.Column("digest", sa.String(length=150), nullable=False),
        sa.Column("indexed_at", sa.Float(), nullable=False),
        sa.Column("checked_at", sa.Float(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("data_time", sa.String(length=64), nullable=True),
        sa.Column("inventory", sa.Text(), nullable=False),
        sa.Column("cyclonedx", sa.Text(), nullable=False),
        sa.Column("spdx", sa.Text(), nullable=False),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.Column("finding_ids", sa.Text(), nullable=False),
        sa.Column("sbom_digest", sa.String(length=150), nullable=True),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_scan_reports")),
    )
    op.create_table(
        "scan_packages",
        sa.Column("ecosystem", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("digest", sa.String(length=150), nullable=False),
        sa.PrimaryKeyConstraint("ecosystem", "name", "digest", name=op.f("pk_scan_packages")),
    )
    with op.batch_alter_table("scan_packages", schema=None) as batch_op:
        batch_op.create_index("ix_scan_packages_digest", ["digest"], unique=False)
    op.create_table(
        "scan_state",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_scan_state")),
    )


def downgrade() -> None:
    op.drop_table("scan_state")
    op.drop_table("scan_packages")
    op.drop_table("scan_reports")
    op.drop_table("scan_jobs")
