"""refresh-token generations, robot repository patterns, the append-only audit log

``users.token_generation`` revokes a user's refresh tokens when bumped; ``robots.repositories`` limits a robot's
permissions to repository-name patterns; ``audit_events`` is append-only, enforced by triggers on both
databases, so that not even a bug in the application can rewrite history. Repositories that exist already get
their project (private, without members), so that upgrading never leaves a repository outside any project.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 20:05:00
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_SQLITE_TRIGGERS = [
    "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
    "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
]
_PG_TRIGGERS = [
    "CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'audit_events is append-only'; END $$",
    "CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events "
    "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
    "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()",
]


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token_generation", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("robots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("repositories", sa.Text(), nullable=True))
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("project", sa.String(length=255), nullable=True),
        sa.Column("repository", sa.String(length=255), nullable=True),
        sa.Column("target", sa.String(length=512), nullable=True),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_actor", ["actor", "at"], unique=False)
        batch_op.create_index("ix_audit_events_at", ["at"], unique=False)
        batch_op.create_index("ix_audit_events_project", ["project", "at"], unique=False)
    _projects_for_existing_repositories()
    triggers = _SQLITE_TRIGGERS if op.get_context().dialect.name == "sqlite" else _PG_TRIGGERS
    for statement in triggers:
        op.execute(statement)


def _projects_for_existing_repositories() -> None:
    """Repositories pushed before access control get their project (private, no members: admins decide)."""
    conn = op.get_bind()
    names = {r[0].split("/", 1)[0] for r in conn.execute(sa.text("SELECT name FROM repositories"))}
    known = {r[0] for r in conn.execute(sa.text("SELECT name FROM projects"))}
    now = time.time()
    for name in sorted(names - known):
        conn.execute(
            sa.text("INSERT INTO projects (name, public, created_at) VALUES (:name, :public, :now)"),
            {"name": name, "public": False, "now": now},
        )


def downgrade() -> None:
    op.drop_table("audit_events")  # drops its triggers with it
    if op.get_context().dialect.name != "sqlite":
        op.execute("DROP FUNCTION audit_events_append_only()")
    # plain ALTER TABLE DROP COLUMN (SQLite >= 3.35): batch mode would re-create ``users``, and dropping the old
    # table cascades to every membership that names a user
    op.drop_column("robots", "repositories")
    op.drop_column("users", "token_generation")
