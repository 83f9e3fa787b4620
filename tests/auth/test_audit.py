"""The audit log on SQLite and PostgreSQL: buffered and immediate writes, filters, paging, JSON-lines export,
and the triggers that make ``audit_events`` append-only whatever the application tries.

Not here: which events the management API and the registry record (``test_api_management.py``,
``tests/registry``).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from trustyard.auth.audit import AuditEvent, AuditLog, AuditQuery
from trustyard.db.engine import Database
from trustyard.db.models import audit_events


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A fresh, migrated database."""
    database = Database(database_url)
    try:
        yield database
    finally:
        database.dispose()


def stored(db: Database) -> int:
    """How many events the table holds."""
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(audit_events)).scalar_one())


def seed(log: AuditLog) -> None:
    """Six events at t=100..105 with varied actors, projects, repositories, actions and results."""
    rows = [
        AuditEvent("alice", "login", at=100.0, address="10.0.0.1"),
        AuditEvent("alice", "push", project="lab", repository="lab/app", target="v1", at=101.0),
        AuditEvent("bob", "pull", project="lab", repository="lab/app", at=102.0),
        AuditEvent("bob", "push", "denied", project="lab", repository="lab/db", at=103.0),
        AuditEvent("robot$ci", "pull", project="ops", repository="ops/tool", at=104.0),
        AuditEvent("", "login", "failure", detail={"reason": "invalid username or password"}, at=105.0),
    ]
    for event in rows:
        log.record(event)
    log.flush()


# -- writing ---------------------------------------------------------------------------------------------------


def test_without_the_writer_thread_every_event_is_written_at_once(db: Database) -> None:
    log = AuditLog(db)
    log.record(AuditEvent("alice", "login"))
    assert stored(db) == 1
    [event] = log.query()
    assert (event.actor, event.action, event.result) == ("alice", "login", "success")
    assert isinstance(event.id, int) and event.at <= time.time()


def test_the_writer_buffers_until_its_interval_a_flush_or_a_waiting_change(db: Database) -> None:
    log = AuditLog(db, flush_interval=60, max_batch=1000)
    log.start()
    try:
        log.record(AuditEvent("alice", "pull", project="lab"))
        log.record(AuditEvent("bob", "pull", project="lab"))
        assert stored(db) == 0  # buffered: the writer wakes once a minute
        assert log.flush() == 2
        assert stored(db) == 2
        log.record(AuditEvent("carol", "pull"))
        log.record(AuditEvent("admin", "member.set", project="lab"), wait=True)  # writes what waits too
        assert stored(db) == 4
        assert [e.actor for e in log.query()] == ["alice", "bob", "carol", "admin"]
        log.record(AuditEvent("dave", "pull"))
    finally:
        log.close()
    assert stored(db) == 5  # closing writes what is pending


def test_a_full_batch_wakes_the_writer(db: Database) -> None:
    log = AuditLog(db, flush_interval=60, max_batch=3)
    log.start()
    try:
        for n in range(3):
            log.record(AuditEvent(f"user{n}", "pull"))
        deadline = time.monotonic() + 10
        while stored(db) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stored(db) == 3
    finally:
        log.close()


def test_an_event_must_have_a_known_result() -> None:
    with pytest.raises(ValueError, match="audit result must be one of"):
        AuditEvent("alice", "login", "maybe")


def test_long_fields_are_cut_to_their_columns_and_detail_is_json(db: Database) -> None:
    log = AuditLog(db)
    log.record(AuditEvent("a" * 300, "x" * 100, target="t" * 600, detail={"when": 1.5, "list": [1, 2]}))
    [event] = log.query()
    assert (len(event.actor), len(event.action), len(event.target or "")) == (255, 64, 512)
    assert event.detail == {"list": [1, 2], "when": 1.5}


# -- reading ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "actors_at"),
    [
        (AuditQuery(), [100, 101, 102, 103, 104, 105]),
        (AuditQuery(actor="bob"), [102, 103]),
        (AuditQuery(actor=""), [105]),
        (AuditQuery(project="lab"), [101, 102, 103]),
        (AuditQuery(repository="lab/app"), [101, 102]),
        (AuditQuery(action="push"), [101, 103]),
        (AuditQuery(result="denied"), [103]),
        (AuditQuery(result="failure"), [105]),
        (AuditQuery(since=102.0), [102, 103, 104, 105]),
        (AuditQuery(until=102.0), [100, 101]),
        (AuditQuery(since=101.0, until=104.0, project="lab", action="push"), [101, 103]),
        (AuditQuery(actor="nobody"), []),
    ],
    ids=["all", "actor", "anonymous", "project", "repository", "action", "denied", "failure", "since", "until",
         "combined", "none"],
)  # fmt: skip
def test_queries_filter_by_every_field(db: Database, filters: AuditQuery, actors_at: list[int]) -> None:
    log = AuditLog(db)
    seed(log)
    assert [e.at for e in log.query(filters)] == [float(t) for t in actors_at]


def test_pages_continue_after_the_last_id_seen(db: Database) -> None:
    log = AuditLog(db)
    seed(log)
    first = log.query(limit=4)
    assert [e.at for e in first] == [100.0, 101.0, 102.0, 103.0]
    rest = log.query(AuditQuery(after_id=first[-1].id), limit=4)
    assert [e.at for e in rest] == [104.0, 105.0]
    assert log.query(AuditQuery(after_id=rest[-1].id)) == []
    assert [e.at for e in log.query(AuditQuery(project="lab", after_id=first[1].id))] == [102.0, 103.0]


def test_iterate_reads_past_a_page_in_order(db: Database) -> None:
    log = AuditLog(db)
    with db.write() as conn:  # 2,500 events in one statement: more than two pages of the iterator
        conn.execute(
            insert(audit_events),
            [{"at": float(n), "actor": "u", "action": "pull", "result": "success"} for n in range(2500)],
        )
    seen = [e.at for e in log.iterate(AuditQuery(actor="u"))]
    assert seen == [float(n) for n in range(2500)]


def test_export_writes_one_sorted_json_object_per_line(db: Database) -> None:
    log = AuditLog(db)
    seed(log)
    out = io.StringIO()
    assert log.export(out, AuditQuery(project="lab")) == 3
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    first = json.loads(lines[0])
    assert first == {
        "id": first["id"],
        "at": 101.0,
        "actor": "alice",
        "action": "push",
        "result": "success",
        "project": "lab",
        "repository": "lab/app",
        "target": "v1",
        "address": None,
        "detail": None,
    }
    assert lines[0] == json.dumps(first, sort_keys=True)
    assert [json.loads(line)["at"] for line in lines] == [101.0, 102.0, 103.0]


# -- append-only -----------------------------------------------------------------------------------------------


def test_update_and_delete_are_refused_by_the_database(db: Database) -> None:
    log = AuditLog(db)
    seed(log)
    attempts = [
        update(audit_events).values(actor="someone else"),
        update(audit_events).where(audit_events.c.result == "denied").values(result="success"),
        delete(audit_events),
        delete(audit_events).where(audit_events.c.actor == "bob"),
    ]
    for statement in attempts:
        with pytest.raises(DBAPIError, match="audit_events is append-only"), db.write() as conn:
            conn.execute(statement)
    assert stored(db) == 6
    assert [e.actor for e in log.query()] == ["alice", "alice", "bob", "bob", "robot$ci", ""]


@pytest.mark.postgres
def test_truncate_is_refused_on_postgresql(postgresql_url: str) -> None:
    database = Database(postgresql_url)
    try:
        log = AuditLog(database)
        seed(log)
        with pytest.raises(DBAPIError, match="audit_events is append-only"), database.write() as conn:
            conn.execute(text("TRUNCATE audit_events"))
        assert stored(database) == 6
    finally:
        database.dispose()
