"""The metadata schema: SQLAlchemy Core tables shared by SQLite and PostgreSQL.

The database is the registry's source of truth for what exists where: a blob file that no row names is
invisible (and garbage), a row is only written after its blob is durable. Foreign keys make the database
itself refuse to forget a blob that a manifest still references. Times are epoch seconds (float) so the
same arithmetic works on both backends. Schema changes go through Alembic migrations in ``migrations/``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

DIGEST = String(150)

repositories = Table(
    "repositories",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)

blobs = Table(
    "blobs",
    metadata,
    Column("digest", DIGEST, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
    # bumped whenever something starts to rely on the blob (upload, mount, manifest push, HEAD); garbage
    # collection only deletes rows whose last_used is older than its grace period, re-checked under lock
    Column("last_used", Float, nullable=False),
)

repository_blobs = Table(
    "repository_blobs",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", DIGEST, ForeignKey("blobs.digest"), primary_key=True),
    Column("created_at", Float, nullable=False),
    Index("ix_repository_blobs_digest", "digest"),
)

manifests = Table(
    "manifests",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", DIGEST, ForeignKey("blobs.digest"), primary_key=True),
    Column("media_type", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("artifact_type", String(255), nullable=True),
    Column("subject", DIGEST, nullable=True),
    Column("annotations", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Index("ix_manifests_subject", "repository_id", "subject"),
    Index("ix_manifests_digest", "digest"),
)

manifest_references = Table(
    "manifest_references",
    metadata,
    Column("repository_id", Integer, primary_key=True),
    Column("manifest_digest", DIGEST, primary_key=True),
    Column("child_digest", DIGEST, ForeignKey("blobs.digest"), primary_key=True),
    Column("is_manifest", Integer, nullable=False),
    ForeignKeyConstraint(
        ["repository_id", "manifest_digest"],
        ["manifests.repository_id", "manifests.digest"],
        ondelete="CASCADE",
        name="fk_manifest_references_manifest",
    ),
    Index("ix_manifest_references_child", "child_digest"),
)

tags = Table(
    "tags",
    metadata,
    Column("repository_id", Integer, primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("manifest_digest", DIGEST, nullable=False),
    Column("updated_at", Float, nullable=False),
    ForeignKeyConstraint(
        ["repository_id", "manifest_digest"],
        ["manifests.repository_id", "manifests.digest"],
        ondelete="CASCADE",
        name="fk_tags_manifest",
    ),
    Index("ix_tags_manifest", "repository_id", "manifest_digest"),
)

uploads = Table(
    "uploads",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Float, nullable=False),
)


# -- access control (issue 3): identities, projects, memberships, robot accounts --------------------------------
# Secrets are stored only as argon2id hashes (``auth/passwords.py``). Deleting a user, team or project removes
# its memberships (and a project's robots) with it.

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("email", String(320), nullable=True),
    # NULL: no local password (cannot log in with one; accounts of other identity providers)
    Column("password_hash", String(255), nullable=True),
    Column("is_admin", Boolean, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    # bumped on password change, disable and admin change: every refresh token issued before stops working
    Column("token_generation", Integer, nullable=False, server_default="0"),
)

teams = Table(
    "teams",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)

team_members = Table(
    "team_members",
    metadata,
    Column("team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_team_members_user", "user_id"),
)

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("public", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    # the pull policy (auth.model.ProjectPolicy); the allowlist is a JSON list of {id, expires_at, reason}
    Column("content_trust", Boolean, nullable=False, server_default=false()),
    Column("block_severity", String(16), nullable=True),
    Column("block_unscanned", Boolean, nullable=False, server_default=false()),
    Column("allowlist", Text, nullable=False, server_default="[]"),
)

project_members = Table(
    "project_members",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    Column("team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE"), nullable=True),
    Column("role", String(32), nullable=False),
    Column("created_at", Float, nullable=False),
    CheckConstraint("(user_id IS NULL) <> (team_id IS NULL)", name="ck_project_members_user_or_team"),
    UniqueConstraint("project_id", "user_id", name="uq_project_members_user"),
    UniqueConstraint("project_id", "team_id", name="uq_project_members_team"),
    Index("ix_project_members_user", "user_id"),
    Index("ix_project_members_team", "team_id"),
)

robots = Table(
    "robots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    # NULL: a system robot, whose permissions apply in every project
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=True),
    Column("secret_hash", String(255), nullable=False),
    Column("permissions", Text, nullable=False),  # JSON list of action names
    # JSON list of repository-name patterns (fnmatch) the permissions are limited to; NULL: every repository
    Column("repositories", Text, nullable=True),
    Column("expires_at", Float, nullable=True),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_robots_project", "project_id"),
)


# -- content trust (issue 6): Notary metadata kept verbatim, its change feed, the server's signing keys -----------

trust_files = Table(
    "trust_files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("gun", String(255), nullable=False),
    Column("role", String(255), nullable=False),  # root | targets | targets/<x> | snapshot | timestamp
    Column("version", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),  # hex of the exact bytes: the client's consistent name
    Column("data", LargeBinary, nullable=False),  # the uploaded (or server-signed) bytes, served unchanged
    Column("created_at", Float, nullable=False),
    UniqueConstraint("gun", "role", "version", name="uq_trust_files_version"),
    Index("ix_trust_files_checksum", "gun", "role", "sha256"),
)

trust_changes = Table(
    "trust_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("gun", String(255), nullable=False),
    Column("version", Integer, nullable=False),  # the timestamp version the change produced (0 for a deletion)
    Column("sha256", String(64), nullable=False),  # hex of that timestamp ("" for a deletion)
    Column("category", String(16), nullable=False),  # update | deletion
    Column("created_at", Float, nullable=False),
    Index("ix_trust_changes_gun", "gun", "id"),
)

trust_keys = Table(
    "trust_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("gun", String(255), nullable=False),
    Column("role", String(16), nullable=False),  # timestamp | snapshot
    Column("key_id", String(64), nullable=False),
    Column("public", Text, nullable=False),  # the Notary key object (JSON)
    Column("sealed", LargeBinary, nullable=False),  # nonce + AES-256-GCM(private key), bound to gun/role/key_id
    Column("created_at", Float, nullable=False),
    UniqueConstraint("gun", "key_id", name="uq_trust_keys_key"),
    Index("ix_trust_keys_role", "gun", "role"),
)

audit_events = Table(
    "audit_events",
    metadata,
    # append-only: migration 0003 adds triggers that refuse UPDATE and DELETE on both databases
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor", String(255), nullable=False),  # user name, robot$name, "" for anonymous, cli:<unix user>
    Column("action", String(64), nullable=False),  # e.g. pull, push, delete, login, token, member.set
    Column("project", String(255), nullable=True),
    Column("repository", String(255), nullable=True),
    Column("target", String(512), nullable=True),  # tag, digest, user or robot name the action was on
    Column("result", String(16), nullable=False),  # success | failure | denied
    Column("address", String(64), nullable=True),
    Column("detail", Text, nullable=True),  # JSON object with anything else worth keeping
    Index("ix_audit_events_at", "at"),
    Index("ix_audit_events_actor", "actor", "at"),
    Index("ix_audit_events_project", "project", "at"),
)


# -- background scanning (issues 4 and 5): jobs, bills of materials, the package index for re-checks --------------
# Keyed by manifest digest, not by repository: an image pushed to several repositories is indexed once.

scan_jobs = Table(
    "scan_jobs",
    metadata,
    Column("digest", DIGEST, primary_key=True),
    Column("status", String(16), nullable=False),  # queued | running | done | failed | skipped
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("queued_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("error", Text, nullable=True),
    # the image was pushed to another repository after it was indexed: attach its SBOM referrer there too
    Column("attach_pending", Boolean, nullable=False, server_default=false()),
    Index("ix_scan_jobs_status", "status", "queued_at"),
)

scan_reports = Table(
    "scan_reports",
    metadata,
    Column("digest", DIGEST, primary_key=True),
    Column("indexed_at", Float, nullable=False),
    Column("checked_at", Float, nullable=False),  # last match against the vulnerability store
    Column("generation", Integer, nullable=False),  # the store's import generation that match saw
    Column("data_time", String(64), nullable=True),  # newest data time of the store's sources then
    Column("inventory", Text, nullable=False),  # JSON components, enough to match again without layers
    Column("cyclonedx", Text, nullable=False),
    Column("spdx", Text, nullable=False),
    Column("findings", Text, nullable=False),  # JSON: {"status", "findings": [...], "notes": [...]}
    Column("finding_ids", Text, nullable=False),  # JSON sorted list of finding ids (what a re-check compares)
    Column("sbom_digest", DIGEST, nullable=True),  # the CycloneDX blob the referrers carry
)

scan_packages = Table(
    "scan_packages",
    metadata,
    # one row per store lookup an inventory's match makes: a changed advisory naming (ecosystem, name)
    # re-checks exactly the inventories listed here
    Column("ecosystem", String(128), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("digest", DIGEST, primary_key=True),
    Index("ix_scan_packages_digest", "digest"),
)

scan_state = Table(
    "scan_state",
    metadata,
    Column("key", String(64), primary_key=True),  # e.g. "generation": the store generation re-checked up to
    Column("value", Text, nullable=False),
)


# -- garbage collection (issue 9): one row per run of the collector, scheduled or from the command line --------

gc_runs = Table(
    "gc_runs",
    metadata,
    # written when a run starts (finished_at NULL, status "running": a run that never finished, e.g. the process
    # was killed, stays visible as such) and completed when it ends, with what it deleted or why it stopped
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    Column("trigger", String(16), nullable=False),  # schedule | cli
    Column("dry_run", Boolean, nullable=False, server_default=false()),
    Column("status", String(16), nullable=False),  # running | done | failed
    Column("manifests_deleted", Integer, nullable=False, server_default="0"),
    Column("blobs_deleted", Integer, nullable=False, server_default="0"),
    Column("bytes_freed", BigInteger, nullable=False, server_default="0"),
    Column("uploads_expired", Integer, nullable=False, server_default="0"),
    Column("orphan_files", Integer, nullable=False, server_default="0"),
    Column("error", Text, nullable=True),
    Index("ix_gc_runs_started_at", "started_at"),
)
