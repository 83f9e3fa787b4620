"""``Database`` on SQLite and PostgreSQL: migrations, foreign keys, transactions, lean reads, clean errors.

Every test taking ``database_url`` runs on both backends (``tests/fixtures/databases.py``). Not here: the
registry's queries (``tests/registry/test_metadata.py``).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, delete, func, insert, inspect, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from trustyard.db import models
from trustyard.db.engine import Database, DatabaseError, is_transient, retrying
from trustyard.registry.metadata import MetadataStore, NewManifest

LAYER = "sha256:" + "1" * 64
CONFIG = "sha256:" + "2" * 64
MANIFEST = "sha256:" + "3" * 64


def head_revision() -> str:
    """The newest migration's revision id."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(models.__file__).parent / "migrations"))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def revisions(conn: Connection) -> list[str]:
    """The rows of Alembic's version table."""
    return [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]


def push_image(db: Database, repo: str = "team/app") -> None:
    """A manifest with a config and a layer, recorded the way the service does it."""
    meta = MetadataStore(db)
    with db.write() as conn:
        meta.record_blob(conn, repo, CONFIG, 10)
        meta.record_blob(conn, repo, LAYER, 20)
    manifest = NewManifest(
        digest=MANIFEST,
        media_type="application/vnd.oci.image.manifest.v1+json",
        size=30,
        artifact_type=None,
        subject=None,
        annotations={},
        blob_digests=frozenset({CONFIG, LAYER}),
        child_digests=frozenset(),
    )
    meta.put_manifest(repo, manifest, ["v1"], lambda: None)


# -- migrations --------------------------------------------------------------------------------------------------


def test_migration_builds_the_models_schema_on_an_empty_database(database_url: str) -> None:
    db = Database(database_url)
    try:
        with db.read() as conn:
            assert set(inspect(conn).get_table_names()) == {*models.metadata.tables, "alembic_version"}
            assert revisions(conn) == [head_revision()]
            # the migrations and the models describe the same schema, on this backend
            assert compare_metadata(MigrationContext.configure(conn), models.metadata) == []
    finally:
        db.dispose()


def test_migrating_again_is_a_no_op_that_keeps_the_data(database_url: str) -> None:
    first = Database(database_url)
    push_image(first)
    first.dispose()
    second = Database(database_url)
    try:
        second.migrate()
        with second.read() as conn:
            assert revisions(conn) == [head_revision()]
            assert conn.execute(select(func.count()).select_from(models.manifests)).scalar_one() == 1
        assert MetadataStore(second).resolve_tag("team/app", "v1") is not None
    finally:
        second.dispose()


OPEN_WHEN_TOLD = """
import os, sys, time
from trustyard.db.engine import Database, DatabaseError
open(sys.argv[2] + "." + str(os.getpid()), "w").close()
while not os.path.exists(sys.argv[2]):
    time.sleep(0.001)
try:
    Database(sys.argv[1]).dispose()
except DatabaseError as e:
    sys.exit(e.message)
"""
OPENERS = 4


def test_processes_opening_a_new_database_at_once_migrate_it_once(database_url: str, tmp_path: Path) -> None:
    """Regression: nodes (or serve + gc) starting together on a new database failed with duplicate
    ``alembic_version`` (PostgreSQL) or ``database is locked`` (SQLite)."""
    go = tmp_path / "go"
    procs = [
        subprocess.Popen([sys.executable, "-c", OPEN_WHEN_TOLD, database_url, str(go)], stderr=subprocess.PIPE)
        for _ in range(OPENERS)
    ]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("go.*"))) < OPENERS and time.monotonic() < deadline:
        time.sleep(0.01)  # every interpreter has imported trustyard and waits at the line
    go.touch()
    results = [(p.returncode, err.decode()) for p in procs for _, err in [p.communicate(timeout=60)]]
    assert results == [(0, "")] * OPENERS
    db = Database(database_url, migrate=False)
    try:
        with db.read() as conn:
            assert revisions(conn) == [head_revision()]
    finally:
        db.dispose()


# -- constraints and transactions --------------------------------------------------------------------------------


@pytest.mark.parametrize("digest", [LAYER, MANIFEST], ids=["layer", "manifest-itself"])
def test_foreign_keys_refuse_deleting_a_blob_a_manifest_needs(database_url: str, digest: str) -> None:
    db = Database(database_url)
    try:
        push_image(db)
        with pytest.raises(IntegrityError), db.write() as conn:
            conn.execute(delete(models.repository_blobs).where(models.repository_blobs.c.digest == digest))
            conn.execute(delete(models.blobs).where(models.blobs.c.digest == digest))
        with db.read() as conn:  # the whole transaction rolled back, the link included
            assert conn.execute(select(models.blobs.c.size).where(models.blobs.c.digest == digest)).scalar() is not None
            if digest == LAYER:
                linked = select(models.repository_blobs.c.digest).where(models.repository_blobs.c.digest == digest)
                assert conn.execute(linked).first() is not None
    finally:
        db.dispose()


def test_foreign_keys_refuse_a_reference_to_an_unknown_blob(database_url: str) -> None:
    db = Database(database_url)
    try:
        push_image(db)
        with pytest.raises(IntegrityError), db.write() as conn:
            rid = conn.execute(select(models.repositories.c.id)).scalar_one()
            conn.execute(
                insert(models.manifest_references).values(
                    repository_id=rid, manifest_digest=MANIFEST, child_digest="sha256:" + "9" * 64, is_manifest=0
                )
            )
    finally:
        db.dispose()


def test_write_commits_on_success_and_rolls_back_on_error(database_url: str) -> None:
    db = Database(database_url)
    row = {"digest": LAYER, "size": 1, "created_at": 0.0, "last_used": 0.0}
    try:
        with pytest.raises(RuntimeError), db.write() as conn:
            conn.execute(insert(models.blobs).values(**row))
            raise RuntimeError("boom")
        with db.read() as conn:
            assert conn.execute(select(func.count()).select_from(models.blobs)).scalar_one() == 0
        with db.write() as conn:
            conn.execute(insert(models.blobs).values(**row))
        with db.read() as conn:
            assert conn.execute(select(func.count()).select_from(models.blobs)).scalar_one() == 1
    finally:
        db.dispose()


def test_lean_reads_see_committed_writes(database_url: str) -> None:
    db = Database(database_url)
    try:
        assert db.fetch_one("SELECT digest FROM blobs WHERE digest = ?", (LAYER,)) is None
        push_image(db)
        assert db.fetch_one("SELECT digest, size FROM blobs WHERE digest = ?", (LAYER,)) == (LAYER, 20)
    finally:
        db.dispose()


@pytest.mark.postgres
def test_reads_survive_the_server_dropping_every_connection(postgresql_url: str) -> None:
    """Regression: after a PostgreSQL restart (or an idle timeout) the first read on each lean connection
    failed with a raw ``psycopg.OperationalError`` (a 500 for pulls), until every dead one was used once."""
    db = Database(postgresql_url)
    try:
        push_image(db)
        meta = MetadataStore(db)
        for _ in range(3):  # several lean connections in the free list
            assert meta.resolve_tag("team/app", "v1") is not None
        assert meta.list_tags("team/app", None, None) == ["v1"]  # a pooled SQLAlchemy connection too
        killer = Database(postgresql_url, migrate=False)
        with killer.write() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        killer.dispose()
        assert meta.resolve_tag("team/app", "v1") is not None
        assert meta.get_manifest("team/app", MANIFEST) is not None
        assert meta.list_tags("team/app", None, None) == ["v1"]
    finally:
        db.dispose()


@pytest.mark.postgres
def test_lean_read_failures_are_sqlalchemy_errors(postgresql_url: str) -> None:
    """Database failures reach the HTTP layer as ``SQLAlchemyError`` (mapped to 503 UNAVAILABLE), on
    every path, never as a driver exception (an unexpected 500)."""
    db = Database(postgresql_url)
    try:
        with pytest.raises(DBAPIError, match="no_such_table"):
            db.fetch_one("SELECT * FROM no_such_table WHERE x = ?", (1,))
        assert db.fetch_one("SELECT 1 WHERE 1 = ?", (1,)) == (1,)  # the pool still works afterwards
    finally:
        db.dispose()


@pytest.mark.postgres
def test_deadlocks_and_serialization_failures_are_transient(postgresql_url: str) -> None:
    db = Database(postgresql_url)
    try:
        for sqlstate, transient in [("40P01", True), ("40001", True), ("23505", False)]:
            with pytest.raises(DBAPIError) as info, db.write() as conn:
                conn.execute(text(f"DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '{sqlstate}'; END $$"))
            assert is_transient(info.value) is transient, sqlstate
    finally:
        db.dispose()


# -- errors users see ----------------------------------------------------------------------------------------------


PASSWORD = "hunter2"


def assert_one_clean_line(message: str) -> None:
    assert "\n" not in message
    assert "Traceback" not in message and "sqlalche.me" not in message
    assert PASSWORD not in message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("nonsense", "cannot open database nonsense"),
        ("mysql://someone:hunter2@db.example/registry", "MySQLdb"),
        ("postgresql+psycopg2://someone:hunter2@db.example/registry", "psycopg2"),
        ("postgresql://someone:hunter2@127.0.0.1:1/registry", "Connection refused"),
        ("postgres://someone:hunter2@127.0.0.1:1/registry", "Connection refused"),
    ],
    ids=["not-a-url", "unsupported-driver", "missing-driver", "refused", "postgres-scheme"],
)
def test_unusable_urls_are_one_line_errors(url: str, expected: str) -> None:
    with pytest.raises(DatabaseError) as info:
        Database(url)
    assert expected in info.value.message
    assert_one_clean_line(info.value.message)
    if "hunter2" in url:
        assert "someone:***@" in info.value.message


def test_sqlite_file_in_an_impossible_folder_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(DatabaseError) as info:
        Database(f"sqlite:///{tmp_path}/a-file/metadata.db")
    assert "cannot create the folder" in info.value.message
    assert_one_clean_line(info.value.message)


@pytest.mark.postgres
def test_missing_postgresql_database_is_a_one_line_error(postgresql_url: str) -> None:
    with pytest.raises(DatabaseError) as info:
        Database(postgresql_url.rsplit("/", 1)[0] + "/no_such_database")
    assert 'database "no_such_database" does not exist' in info.value.message
    assert_one_clean_line(info.value.message)


def test_retrying_runs_a_transaction_again_after_a_deadlock_only() -> None:
    class _DeadlockError(Exception):
        sqlstate = "40P01"

    calls: list[int] = []

    def deadlocks_once() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise DBAPIError("UPDATE blobs", {}, _DeadlockError())
        return "done"

    assert retrying(deadlocks_once) == "done"
    assert len(calls) == 2

    def constraint() -> None:
        raise DBAPIError("INSERT", {}, Exception("duplicate key"))

    with pytest.raises(DBAPIError):
        retrying(constraint)
