"""``trustyard admin`` through click's runner, in-process, on a real database (SQLite, and PostgreSQL where a
test takes ``database_url``): every command's help, tables and ``--json``, the audit trail of changes made as
``cli:<unix user>``, secrets shown once and never taken on the command line, exit codes 0 / 1 / 2.

Not here: the management API (``tests/auth/test_api_management.py``), the audit log's storage (``test_audit.py``).
"""

from __future__ import annotations

import getpass
import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from trustyard.auth.audit import AuditLog, AuditQuery
from trustyard.auth.errors import AuthenticationError
from trustyard.auth.providers import LocalIdentityProvider
from trustyard.auth.store import IdentityStore
from trustyard.cli import main
from trustyard.cli.admin import admin
from trustyard.db.engine import Database

ACTOR = f"cli:{getpass.getuser()}"
PASSWORD = "correct-horse-1"


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The data options of every command here: a fresh data dir, no TRUSTYARD_* from the caller's environment."""
    for key in ("TRUSTYARD_CONFIG", "TRUSTYARD_DATA_DIR", "TRUSTYARD_DATABASE_URL"):
        monkeypatch.delenv(key, raising=False)
    return ["--data-dir", str(tmp_path / "data")]


def run(data: list[str], *args: str, input: str | None = None) -> Result:
    """``trustyard admin <args> <data options>``."""
    return CliRunner().invoke(main, ["admin", *args, *data], input=input, catch_exceptions=False)


def ok_json(result: Result) -> Any:
    """The JSON a successful command printed."""
    assert result.exit_code == 0, (result.output, result.stderr)
    return json.loads(result.stdout)


def failed(result: Result, code: int, message: str) -> None:
    """The command failed with ``code`` and a one-line ``message`` on stderr, no traceback."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.output


def without_times(body: dict[str, Any]) -> dict[str, Any]:
    """A JSON object without its time fields."""
    return {k: v for k, v in body.items() if k not in ("created_at", "expires_at")}


@pytest.fixture
def db(data: list[str]) -> Iterator[Database]:
    """The database the commands use (migrated on first open)."""
    database = Database(f"sqlite:///{data[1]}/trustyard.db")
    try:
        yield database
    finally:
        database.dispose()


def events(db: Database, **filters: Any) -> list[tuple[str, str, str | None, str | None]]:
    """(actor, action, project, target) of the matching audit events."""
    return [(e.actor, e.action, e.project, e.target) for e in AuditLog(db).query(AuditQuery(**filters), limit=1000)]


# -- help and usage --------------------------------------------------------------------------------------------


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in sorted(group.commands.items()):
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def test_every_command_explains_itself() -> None:
    commands = list(_commands(admin))
    assert {p[0] for p, _ in commands} == {"user", "team", "project", "member", "robot", "audit"}
    for path, command in [((), admin), *commands]:
        result = CliRunner().invoke(main, ["admin", *path, "--help"])
        assert result.exit_code == 0, result.output
        summary = (command.help or "").split("\n")[0].rstrip(".")
        assert summary and " ".join(summary.split()[:3]) in " ".join(result.output.split()), (path, result.output)
        if not isinstance(command, click.Group):
            assert "--data-dir" in result.output and "--database-url" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["member", "set", "lab", "owner", "--user", "alice"], "'owner' is not one of 'project_admin'"),
        (["member", "set", "lab", "guest"], "give exactly one of --user and --team"),
        (["robot", "create", "ci"], "give at least one --permission"),
        (["robot", "create", "ci", "--permission", "manage_members"], "'manage_members' is not one of"),
        (["robot", "create", "ci", "--permission", "pull", "--expires-in", "0"], "0 is not in the range x>=1"),
        (["audit", "query", "--since", "yesterday"], "'yesterday' is not an RFC 3339 time"),
        (["audit", "query", "--until", "2030-01-01T00:00:00"], "has no time zone"),
        (["user", "set", "alice"], "nothing to change"),
        (["user", "create", "alice", "--password", "x"], "No such option '--password'"),
    ],
    ids=[
        "bad-role",
        "no-member",
        "no-permission",
        "not-a-robot-permission",
        "zero-expiry",
        "bad-time",
        "no-zone",
        "nothing-to-set",
        "no-password-on-the-command-line",
    ],
)
def test_usage_errors_exit_2_and_change_nothing(data: list[str], db: Database, args: list[str], message: str) -> None:
    failed(run(data, *args), 2, message)
    assert events(db) == []


# -- users -----------------------------------------------------------------------------------------------------


def test_a_users_life_from_the_shell_is_audited_as_the_unix_user(database_url: str, data: list[str]) -> None:
    url = [*data, "--database-url", database_url]
    created = run(
        url, "user", "create", "alice", "--email", "a@example.org", "--password-stdin", "--json", input=f"{PASSWORD}\n"
    )
    assert without_times(ok_json(created)) == {
        "name": "alice",
        "email": "a@example.org",
        "admin": False,
        "disabled": False,
    }
    assert without_times(ok_json(run(url, "user", "set", "alice", "--admin", "--no-email", "--json"))) == {
        "name": "alice",
        "email": None,
        "admin": True,
        "disabled": False,
    }
    assert [u["name"] for u in ok_json(run(url, "user", "list", "--json"))["users"]] == ["alice"]
    changed = run(url, "user", "passwd", "alice", "--password-stdin", input="another-pass-2\n")
    assert changed.exit_code == 0 and changed.stdout == "password of alice changed\n"
    database = Database(database_url)
    try:
        provider = LocalIdentityProvider(IdentityStore(database))
        assert provider.authenticate("alice", "another-pass-2").is_admin
        with pytest.raises(AuthenticationError):
            provider.authenticate("alice", PASSWORD)
        assert run(url, "user", "delete", "alice", "--yes").stdout == "user alice deleted\n"
        assert events(database) == [
            (ACTOR, "user.create", None, "alice"),
            (ACTOR, "user.update", None, "alice"),
            (ACTOR, "user.update", None, "alice"),
            (ACTOR, "user.delete", None, "alice"),
        ]
        log = json.dumps([e.to_json() for e in AuditLog(database).query()])
        assert PASSWORD not in log and "another-pass-2" not in log
    finally:
        database.dispose()


def test_a_password_is_prompted_for_twice_and_must_be_long_enough(data: list[str], db: Database) -> None:
    prompted = run(data, "user", "create", "bob", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert prompted.exit_code == 0, prompted.output
    assert PASSWORD not in prompted.stdout.replace("Password: ", "")  # hidden input is not echoed
    assert LocalIdentityProvider(IdentityStore(db)).authenticate("bob", PASSWORD).name == "bob"
    failed(
        run(data, "user", "create", "carol", "--password-stdin", input="short\n"),
        1,
        "error: a password needs at least 8 characters",
    )
    no_password = ok_json(run(data, "user", "create", "svc", "--no-password", "--json"))
    assert no_password["name"] == "svc"
    assert [u.name for u in IdentityStore(db).list_users()] == ["bob", "svc"]


def test_errors_are_one_line_and_exit_1(data: list[str], db: Database) -> None:
    failed(run(data, "user", "show", "nobody"), 1, "error: no user named 'nobody'")
    assert run(data, "user", "create", "bob", "--no-password").exit_code == 0
    failed(run(data, "user", "create", "bob", "--no-password"), 1, "error: a user named 'bob' exists already")
    failed(run(data, "user", "create", "b b", "--no-password"), 1, "error: invalid user name 'b b'")
    failed(run(data, "project", "create", "lab", "--admin", "ghost"), 1, "error: no user named 'ghost'")
    failed(run(data, "robot", "rotate", "ghost"), 1, "error: no robot named 'ghost'")
    failed(run(data, "team", "remove", "ghosts", "bob"), 1, "error: no team named 'ghosts'")
    declined = run(data, "user", "delete", "bob", input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.stderr
    assert IdentityStore(db).get_user("bob") is not None


def test_tables_by_default(data: list[str]) -> None:
    run(data, "user", "create", "bob", "--no-password", "--email", "bob@example.org")
    table = run(data, "user", "list")
    assert table.exit_code == 0
    assert "users" in table.stdout and "bob@example.org" in table.stdout and "{" not in table.stdout


# -- teams, projects, members ----------------------------------------------------------------------------------


def test_project_pull_policy(data: list[str], db: Database) -> None:
    run(data, "project", "create", "lab")
    shown = ok_json(run(data, "project", "policy", "lab", "--json"))
    assert (shown["content_trust"], shown["block_severity"], shown["allowlist"]) == (False, None, [])
    changed = ok_json(
        run(
            data,
            *("project", "policy", "lab", "--content-trust", "--block-severity", "high", "--block-unscanned"),
            *("--accept", "CVE-2024-1@2999-01-01", "--accept", "GHSA-aaaa-bbbb-cccc", "--json"),
        )
    )
    assert (changed["content_trust"], changed["block_severity"], changed["block_unscanned"]) == (True, "high", True)
    assert changed["allowlist"] == [
        {"id": "CVE-2024-1", "expires_at": "2999-01-01T00:00:00Z", "reason": ""},
        {"id": "GHSA-aaaa-bbbb-cccc", "expires_at": None, "reason": ""},
    ]
    after = ok_json(
        run(data, "project", "policy", "lab", "--block-severity", "none", "--unaccept", "CVE-2024-1", "--json")
    )
    assert after["block_severity"] is None and [a["id"] for a in after["allowlist"]] == ["GHSA-aaaa-bbbb-cccc"]
    project = IdentityStore(db).get_project("lab")
    assert project is not None and project.policy.content_trust and project.policy.block_severity is None
    table = run(data, "project", "list")
    assert "signed, scanned, 1 accepted" in table.stdout
    failed(run(data, "project", "policy", "lab", "--accept", "CVE 1"), 2, "is not a vulnerability ID")
    failed(run(data, "project", "policy", "lab", "--accept", "CVE-1@tomorrow"), 2, "the expiry is YYYY-MM-DD")
    failed(run(data, "project", "policy", "nope", "--content-trust"), 1, "error: no project named 'nope'")


def test_teams_projects_and_members(data: list[str], db: Database) -> None:
    for name in ("alice", "bob"):
        run(data, "user", "create", name, "--no-password")
    assert ok_json(run(data, "team", "create", "devs", "--json"))["name"] == "devs"
    assert run(data, "team", "add", "devs", "bob").stdout == "bob is a member of team devs\n"
    assert ok_json(run(data, "team", "members", "devs", "--json")) == {"members": ["bob"]}
    project = ok_json(run(data, "project", "create", "lab", "--admin", "alice", "--json"))
    assert without_times(project) == {
        "name": "lab",
        "public": False,
        "content_trust": False,
        "block_severity": None,
        "block_unscanned": False,
        "allowlist": [],
    }
    assert ok_json(run(data, "project", "set", "lab", "--public", "--json"))["public"] is True
    team_role = ok_json(run(data, "member", "set", "lab", "developer", "--team", "devs", "--json"))
    assert team_role == {"kind": "team", "name": "devs", "role": "developer"}
    assert ok_json(run(data, "member", "list", "lab", "--json")) == {
        "members": [
            {"kind": "user", "name": "alice", "role": "project_admin"},
            {"kind": "team", "name": "devs", "role": "developer"},
        ]
    }
    assert IdentityStore(db).role_of("bob", "lab") is not None
    assert run(data, "member", "remove", "lab", "--team", "devs").stdout == "devs removed from lab\n"
    failed(run(data, "member", "remove", "lab", "--team", "devs"), 1, "error: team 'devs' is not a member of project")
    assert run(data, "team", "remove", "devs", "bob").exit_code == 0
    assert run(data, "team", "delete", "devs", "--yes").stdout == "team devs deleted\n"
    assert run(data, "project", "delete", "lab", "--yes").stdout == "project lab deleted\n"
    assert [a for _, a, _, _ in events(db) if not a.startswith("user.")] == [
        "team.create",
        "team.member.add",
        "project.create",
        "project.update",
        "member.set",
        "member.remove",
        "team.member.remove",
        "team.delete",
        "project.delete",
    ]


# -- robots ----------------------------------------------------------------------------------------------------


def test_a_robot_secret_is_printed_once(data: list[str], db: Database) -> None:
    run(data, "project", "create", "lab")
    created = ok_json(
        run(
            data,
            "robot",
            "create",
            "ci",
            "--project",
            "lab",
            "--permission",
            "pull",
            "--permission",
            "push",
            "--repository",
            "lab/app-*",
            "--expires-in",
            "3600",
            "--json",
        )
    )
    secret = created.pop("secret")
    assert without_times(created) == {
        "name": "ci",
        "login": "robot$ci",
        "project": "lab",
        "permissions": ["pull", "push"],
        "repositories": ["lab/app-*"],
        "expired": False,
        "disabled": False,
    }
    store = IdentityStore(db)
    assert store.authenticate_robot("ci", secret).name == "ci"
    for shown in (run(data, "robot", "show", "ci", "--json"), run(data, "robot", "list", "--project", "lab")):
        assert shown.exit_code == 0 and secret not in shown.output and "secret" not in shown.output
    table = run(data, "robot", "rotate", "ci")
    assert "login:  robot$ci" in table.stdout and "shown only now" in table.stderr
    rotated = table.stdout.split("secret: ")[1].strip()
    assert rotated != secret and store.authenticate_robot("ci", rotated).name == "ci"
    with pytest.raises(AuthenticationError):
        store.authenticate_robot("ci", secret)
    log = json.dumps([e.to_json() for e in AuditLog(db).query()])
    assert secret not in log and rotated not in log


def test_robots_are_updated_and_deleted(data: list[str], db: Database) -> None:
    ok_json(run(data, "robot", "create", "mirror", "--permission", "pull", "--json"))
    disabled = ok_json(
        run(
            data,
            "robot",
            "update",
            "mirror",
            "--disable",
            "--permission",
            "list",
            "--permission",
            "pull",
            "--expires-at",
            "2999-01-01T00:00:00Z",
            "--json",
        )
    )
    assert (disabled["disabled"], disabled["permissions"], disabled["expires_at"]) == (
        True,
        ["list", "pull"],
        "2999-01-01T00:00:00Z",
    )
    narrowed = ok_json(run(data, "robot", "update", "mirror", "--repository", "lab/*", "--json"))
    assert (narrowed["repositories"], narrowed["permissions"]) == (["lab/*"], ["list", "pull"])
    opened = ok_json(
        run(data, "robot", "update", "mirror", "--all-repositories", "--never-expires", "--enable", "--json")
    )
    assert (opened["repositories"], opened["expires_at"], opened["disabled"]) == (None, None, False)
    failed(run(data, "robot", "update", "mirror", "--expires-at", "2000-01-01T00:00:00Z"), 1, "is not in the future")
    assert [r["name"] for r in ok_json(run(data, "robot", "list", "--json"))["robots"]] == ["mirror"]
    assert run(data, "robot", "delete", "mirror", "--yes").stdout == "robot mirror deleted\n"
    assert [a for _, a, _, _ in events(db)] == [
        "robot.create",
        "robot.update",
        "robot.update",
        "robot.update",
        "robot.delete",
    ]


# -- audit -----------------------------------------------------------------------------------------------------


def test_audit_query_and_export(data: list[str], tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        run(data, "team", "create", name)
    run(data, "project", "create", "lab")
    page = ok_json(run(data, "audit", "query", "--action", "team.create", "--limit", "2", "--json"))
    assert [e["target"] for e in page["events"]] == ["a", "b"] and page["next"] == page["events"][1]["id"]
    assert all(e["actor"] == ACTOR for e in page["events"])
    rest = ok_json(run(data, "audit", "query", "--action", "team.create", "--after", str(page["next"]), "--json"))
    assert [e["target"] for e in rest["events"]] == ["c"] and rest["next"] is None
    assert ok_json(run(data, "audit", "query", "--project", "lab", "--json"))["events"][0]["action"] == "project.create"
    assert ok_json(run(data, "audit", "query", "--since", "2999-01-01T00:00:00Z", "--json"))["events"] == []
    assert "team.create" in run(data, "audit", "query").stdout
    stdout = run(data, "audit", "export", "--action", "team.create")
    lines = [json.loads(line) for line in stdout.stdout.splitlines()]
    assert [e["target"] for e in lines] == ["a", "b", "c"]
    assert lines == page["events"] + rest["events"]
    target = tmp_path / "audit.jsonl"
    to_file = run(data, "audit", "export", "--output", str(target))
    assert to_file.exit_code == 0 and to_file.stderr == f"4 events written to {target}\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [json.loads(line)["action"] for line in target.read_text().splitlines()][-1] == "project.create"
    failed(run(data, "audit", "export", "--output", str(tmp_path / "missing" / "x.jsonl")), 1, "error: cannot write")
