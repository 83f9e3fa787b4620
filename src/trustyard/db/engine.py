"""Database engines: SQLite (embedded default, WAL) or PostgreSQL, migrated to the newest schema on open.

SQLite needs two things SQLAlchemy does not do by default: foreign keys switched on per connection, and
write transactions that take the write lock up front (``BEGIN IMMEDIATE``) so that two writers never
deadlock upgrading a read lock. ``Database.write()`` opens such a transaction on SQLite and an ordinary
one (READ COMMITTED, with row locks from UPDATE) on PostgreSQL.
"""

from __future__ import annotations

import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine.interfaces import DBAPIModule
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from trustyard.errors import TrustyardError

_MIGRATIONS = Path(__file__).parent / "migrations"

CONNECT_TIMEOUT = 10
"""Seconds to wait for a PostgreSQL server to accept a connection (``?connect_timeout=`` overrides)."""

_MIGRATION_LOCK_KEY = 0x7472757374796172  # "trustyar": the PostgreSQL advisory lock migrations hold
_MIGRATING = threading.Lock()  # Alembic's ``context``/``op`` are module globals: one migration per process

# SQLSTATEs after which PostgreSQL rolled the transaction back and retrying it can succeed
_PG_TRANSIENT = {"40001", "40P01", "55P03"}  # serialization_failure, deadlock_detected, lock_not_available


T = TypeVar("T")


class DatabaseError(TrustyardError):
    """The metadata database cannot be opened, migrated or used."""


def describe(error: BaseException) -> str:
    """The driver's own one-line reason, without SQLAlchemy's statement dump and help link."""
    orig = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else type(error).__name__


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get("trustyard_write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")


def _redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


class Database:
    """An engine plus the two kinds of transaction the services use."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._lean: queue.SimpleQueue[Any] = queue.SimpleQueue()
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                try:
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                except OSError as e:
                    raise DatabaseError(f"cannot create the folder of database {self.url}: {e.strerror or e}") from e
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 60}
            kwargs["pool_size"] = 16
        else:
            kwargs["pool_size"] = 16
            kwargs["max_overflow"] = 16
            kwargs["pool_pre_ping"] = True
            if "connect_timeout=" not in url:  # an unreachable host fails in seconds, not minutes
                kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
            for scheme in ("postgresql://", "postgres://"):
                if url.startswith(scheme):
                    url = "postgresql+psycopg://" + url.removeprefix(scheme)
        try:
            self.engine = create_engine(url, **kwargs)
        except (SQLAlchemyError, ImportError, ValueError) as e:
            raise DatabaseError(f"cannot open database {_redact(self.url)}: {describe(e)}") from e
        if self.is_sqlite:
            _sqlite_setup(self.engine)
        if migrate:
            self.migrate()

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent).

        Safe when several processes or nodes open a new database at once: the migration runs in one
        transaction that first takes the write lock (SQLite ``BEGIN IMMEDIATE``) or an advisory lock
        (PostgreSQL, whose DDL is transactional), so the others wait and then find the schema current.
        """
        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        try:
            with _MIGRATING, self.engine.connect().execution_options(trustyard_write=True) as conn:
                if not self.is_sqlite:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                conn.commit()
        except SQLAlchemyError as e:
            raise DatabaseError(f"cannot migrate database {_redact(self.url)}: {describe(e)}") from e

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (deferred on SQLite, so readers never wait for writers in WAL mode)."""
        with self.engine.connect() as conn:
            try:
                yield conn
            finally:
                conn.rollback()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, committed when the block ends without an exception."""
        with self.engine.connect().execution_options(trustyard_write=True) as conn, conn.begin():
            yield conn

    def fetch_one(self, sql: str, params: Sequence[object]) -> tuple[Any, ...] | None:
        """One row of a single-statement read on a lean DBAPI connection (the pull hot path).

        SQLAlchemy's checkout, autobegin and compilation cost ~15x the query itself for the tiny lookups
        that every pull makes; these bypass it. ``sql`` uses ``?`` placeholders; connections run in
        autocommit mode (a single SELECT is its own consistent snapshot) and are kept in a free list.
        A kept connection the server has dropped (restart, idle timeout) is replaced once; failures are
        raised as SQLAlchemy's ``DBAPIError`` family, like every other database error.
        """
        statement = sql if self.is_sqlite else sql.replace("?", "%s")
        args = tuple(params)
        while True:
            conn, reused = self._lean_checkout()
            try:
                cur = conn.cursor()
                try:
                    cur.execute(statement, args)
                    row = cur.fetchone()
                finally:
                    cur.close()
            except self._dbapi_error as e:
                disconnected = self.engine.dialect.is_disconnect(e, conn, None)
                conn.close()
                if reused and disconnected:
                    continue
                raise DBAPIError.instance(
                    statement, args, e, self._dbapi_error, connection_invalidated=disconnected
                ) from e
            except BaseException:
                conn.close()
                raise
            self._lean.put(conn)
            return None if row is None else tuple(row)

    @property
    def _dbapi_error(self) -> type[DBAPIModule.Error]:
        error: type[DBAPIModule.Error] = self.engine.dialect.loaded_dbapi.Error
        return error

    def _lean_checkout(self) -> tuple[Any, bool]:
        """A lean connection and whether it was kept from an earlier read (it may have gone stale)."""
        try:
            return self._lean.get_nowait(), True
        except queue.Empty:
            pass
        if self.is_sqlite:
            path = self.url.removeprefix("sqlite:///")
            try:
                conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=60)
                conn.execute("PRAGMA busy_timeout=60000")
                conn.execute("PRAGMA query_only=ON")
            except sqlite3.Error as e:
                raise DBAPIError.instance("connect", (), e, sqlite3.Error) from e
            return conn, False
        try:
            fairy = self.engine.raw_connection()
        except self._dbapi_error as e:  # the pool hands over the driver's error as it is
            raise DBAPIError.instance("connect", (), e, self._dbapi_error, connection_invalidated=True) from e
        dbapi = fairy.driver_connection  # taken before detach(), which forgets it
        fairy.detach()  # ours for good: the pool forgets it and never resets its autocommit mode
        dbapi.rollback()  # type: ignore[union-attr]
        dbapi.autocommit = True  # type: ignore[union-attr]
        return dbapi, False

    def dispose(self) -> None:
        """Close every pooled connection."""
        while True:
            try:
                self._lean.get_nowait().close()
            except queue.Empty:
                break
        self.engine.dispose()


def is_transient(error: BaseException) -> bool:
    """Whether a database error is worth retrying (lock timeouts, serialisation failures, deadlocks)."""
    if isinstance(error, DBAPIError) and getattr(error.orig, "sqlstate", None) in _PG_TRANSIENT:
        return True
    return isinstance(error, OperationalError) and "locked" in str(error).lower()


def retrying(fn: Callable[[], T], *, attempts: int = 3) -> T:
    """Run a whole write transaction again when it lost a deadlock or a lock wait (PostgreSQL picks a
    victim among transactions that lock rows in conflicting orders; the victim changed nothing)."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except SQLAlchemyError as e:
            if attempt == attempts or not is_transient(e):
                raise
            time.sleep(0.01 * attempt)
    raise AssertionError("unreachable")  # pragma: no cover
