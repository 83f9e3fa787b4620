"""content trust: Notary metadata files, their change feed, the server's sealed timestamp/snapshot keys

``trust_files`` keeps every version of every role of a GUN as the exact bytes uploaded or signed (hashes in
snapshot and timestamp refer to those bytes), found by latest version, by version and by SHA-256;
``trust_changes`` is notary's change feed; ``trust_keys`` holds the server-managed signing keys encrypted
with the key-encryption key from the settings (never in clear).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 21:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trust_files",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("gun", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trust_files")),
        sa.UniqueConstraint("gun", "role", "version", name="uq_trust_files_version"),
    )
    op.create_index("ix_trust_files_checksum", "trust_files", ["gun", "role", "sha256"])
    op.create_table(
        "trust_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("gun", sa.String(length=255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trust_changes")),
    )
    op.create_index("ix_trust_changes_gun", "trust_changes", ["gun", "id"])
    op.create_table(
        "trust_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("gun", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("public", sa.Text(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trust_keys")),
        sa.UniqueConstraint("gun", "key_id", name="uq_trust_keys_key"),
    )
    op.create_index("ix_trust_keys_role", "trust_keys", ["gun", "role"])


def downgrade() -> None:
    op.drop_index("ix_trust_keys_role", table_name="trust_keys")
    op.drop_table("trust_keys")
    op.drop_index("ix_trust_changes_gun", table_name="trust_changes")
    op.drop_table("trust_changes")
    op.drop_index("ix_trust_files_checksum", table_name="trust_files")
    op.drop_table("trust_files")
