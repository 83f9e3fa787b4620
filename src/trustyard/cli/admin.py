"""``trustyard admin``: users, teams, projects, members, robot accounts and the audit log, from the shell.

The commands mirror the management API (``/api/v1``) but open the database directly, as ``trustyard gc``
does (``--config``, ``--data-dir``, ``--database-url`` on every command): whoever can open the database is
in charge, so there is no login here, and every change is audited with the actor ``cli:<unix user>``
through the same ``IdentityAdmin`` the API uses. Output is a table, or with ``--json`` the API's JSON.
Secrets are never taken on the command line (a password comes from a hidden prompt or ``--password-stdin``)
and a robot's secret is printed once, when created or rotated.

Exit codes: 0 done, 1 refused or failed (one line saying why), 2 usage.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Table

from trustyard.auth.audit import RESULTS, AuditLog, AuditQuery
from trustyard.auth.errors import AuthError
from trustyard.auth.management import KEEP, Actor, IdentityAdmin, resolve_expiry
from trustyard.auth.model import ROBOT_ACTIONS, AcceptedVulnerability, Action, ProjectPolicy, Role
from trustyard.auth.schemas import (
    MIN_PASSWORD,
    AcceptedVulnerabilityWire,
    AuditEventOut,
    AuditPage,
    MemberList,
    MemberOut,
    ProjectList,
    ProjectOut,
    RobotList,
    RobotOut,
    RobotWithSecret,
    TeamList,
    TeamMembers,
    TeamOut,
    UserList,
    UserOut,
)
from trustyard.auth.store import IdentityStore
from trustyard.cli.common import data_options, handle_errors
from trustyard.config import load_settings
from trustyard.db.engine import Database
from trustyard.logs import configure

__all__ = ["admin"]


def _actor() -> Actor:
    """``cli:<unix user>``: who ran the command, as far as this machine knows."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (e.g. a container's arbitrary uid)
        name = f"uid{os.getuid()}"
    return Actor(f"cli:{name}")


class Admin:
    """What a command works with: the identity store, the audit log and the audited changes over one database."""

    def __init__(self, db: Database) -> None:
        self.store = IdentityStore(db)
        self.audit = AuditLog(db)
        self.changes = IdentityAdmin(self.store, self.audit)
        self.actor = _actor()


def _opens_data(command: Callable[..., None]) -> Callable[..., None]:
    """Add the data options to ``command`` and call it with an ``Admin`` over the database they name."""

    @functools.wraps(command)
    def run(config_file: Path | None, data_dir: Path | None, database_url: str | None, **options: Any) -> None:
        settings = load_settings(config_file, data_dir=data_dir, database_url=database_url)
        configure("warning", "text")
        db = Database(settings.metadata_url)
        try:
            command(Admin(db), **options)
        finally:
            db.dispose()

    return data_options(handle_errors(run))


_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (the management API's shapes).")
_yes_option = click.option("--yes", is_flag=True, help="Do not ask for confirmation.")


def _emit(model: BaseModel, as_json: bool, table: Callable[[], Table | str]) -> None:
    """``model`` as JSON, or what ``table`` draws."""
    if as_json:
        click.echo(json.dumps(model.model_dump(mode="json"), indent=2))
    else:
        Console(soft_wrap=True).print(table())


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("-" if v is None else str(v) for v in row))
    return table


def _when(value: dt.datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _confirm(yes: bool, what: str) -> None:
    if not yes:
        click.confirm(f"{what}?", abort=True)


if TYPE_CHECKING:
    _TimeParam = click.ParamType[dt.datetime]
else:  # click before 8.2 has no generic ParamType
    _TimeParam = click.ParamType


class Rfc3339(_TimeParam):
    """An RFC 3339 time with a zone (``2030-01-01T00:00:00Z``), or epoch seconds."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.datetime:
        """The aware datetime ``value`` names; a usage error otherwise."""
        if isinstance(value, dt.datetime):
            return value
        text = str(value)
        try:
            parsed = dt.datetime.fromtimestamp(float(text), dt.UTC)
        except ValueError:
            try:
                parsed = dt.datetime.fromisoformat(text)
            except ValueError:
                self.fail(f"{text!r} is not an RFC 3339 time (2030-01-01T00:00:00Z) or epoch seconds", param, ctx)
        if parsed.tzinfo is None:
            self.fail(f"{text!r} has no time zone; add Z or an offset such as +02:00", param, ctx)
        return parsed


@click.group()
def admin() -> None:
    """Manage users, teams, projects, members, robot accounts and read the audit log.

    Works on the database directly (give the same --data-dir/--database-url/--config as `trustyard serve`),
    so it also works while the server is down. Every change is recorded in the audit log as cli:<your unix
    user>. A running server notices changes within its auth cache time (a few seconds).
    """


# -- users -----------------------------------------------------------------------------------------------------


@admin.group()
def user() -> None:
    """Local users and system administrators."""


def _read_password(from_stdin: bool) -> str:
    """A new password from stdin's first line or a hidden prompt (asked twice); never from the command line."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"a password needs at least {MIN_PASSWORD} characters")
    return password


def _users_table(users: Sequence[UserOut]) -> Table:
    rows = [
        (u.name, u.email, "yes" if u.admin else "", "yes" if u.disabled else "", _when(u.created_at)) for u in users
    ]
    return _table("users", ("name", "email", "admin", "disabled", "created"), rows)


@user.command("list")
@_json_option
@_opens_data
def user_list(a: Admin, as_json: bool) -> None:
    """List every user."""
    found = UserList(users=[UserOut.of(u) for u in a.store.list_users()])
    _emit(found, as_json, lambda: _users_table(found.users))


@user.command("show")
@click.argument("name")
@_json_option
@_opens_data
def user_show(a: Admin, name: str, as_json: bool) -> None:
    """Show one user."""
    found = UserOut.of(a.changes.user(name))
    _emit(found, as_json, lambda: _users_table([found]))


@user.command("create")
@click.argument("name")
@click.option("--email", help="E-mail address.")
@click.option("--admin", "is_admin", is_flag=True, help="Make the user a system administrator.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.option("--no-password", is_flag=True, help="No local password (the user cannot log in with one).")
@_json_option
@_opens_data
def user_create(
    a: Admin, name: str, email: str | None, is_admin: bool, password_stdin: bool, no_password: bool, as_json: bool
) -> None:
    """Create a user; the password is asked for (hidden) unless --password-stdin or --no-password."""
    if password_stdin and no_password:
        raise click.UsageError("--password-stdin and --no-password exclude each other")
    password = None if no_password else _read_password(password_stdin)
    made = UserOut.of(a.changes.create_user(a.actor, name, password=password, email=email, is_admin=is_admin))
    _emit(made, as_json, lambda: _users_table([made]))


@user.command("set")
@click.argument("name")
@click.option("--email", help="New e-mail address.")
@click.option("--no-email", is_flag=True, help="Remove the e-mail address.")
@click.option("--admin/--no-admin", "is_admin", default=None, help="Grant or take system administrator rights.")
@click.option("--disable/--enable", "disabled", default=None, help="Disable the account (its tokens stop working).")
@_json_option
@_opens_data
def user_set(
    a: Admin, name: str, email: str | None, no_email: bool, is_admin: bool | None, disabled: bool | None, as_json: bool
) -> None:
    """Change a user's e-mail address, administrator flag or disabled state."""
    if email is not None and no_email:
        raise click.UsageError("--email and --no-email exclude each other")
    if email is None and not no_email and is_admin is None and disabled is None:
        raise click.UsageError("nothing to change: give --email, --no-email, --admin/--no-admin or --disable/--enable")
    new_email = None if no_email else (KEEP if email is None else email)
    changed = a.changes.update_user(a.actor, name, email=new_email, is_admin=is_admin, disabled=disabled)
    _emit(UserOut.of(changed), as_json, lambda: _users_table([UserOut.of(changed)]))


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@_opens_data
def user_passwd(a: Admin, name: str, password_stdin: bool) -> None:
    """Set a user's password (asked for, hidden); its refresh tokens stop working."""
    a.changes.user(name)
    a.changes.update_user(a.actor, name, password=_read_password(password_stdin))
    click.echo(f"password of {name} changed")


@user.command("delete")
@click.argument("name")
@_yes_option
@_opens_data
def user_delete(a: Admin, name: str, yes: bool) -> None:
    """Delete a user with its team and project memberships."""
    a.changes.user(name)
    _confirm(yes, f"delete user {name}")
    a.changes.delete_user(a.actor, name)
    click.echo(f"user {name} deleted")


# -- teams -----------------------------------------------------------------------------------------------------


@admin.group()
def team() -> None:
    """Teams: a team's project role applies to each of its members."""


@team.command("list")
@_json_option
@_opens_data
def team_list(a: Admin, as_json: bool) -> None:
    """List every team."""
    found = TeamList(teams=[TeamOut.of(t) for t in a.store.list_teams()])
    _emit(
        found,
        as_json,
        lambda: _table("teams", ("name", "created"), [(t.name, _when(t.created_at)) for t in found.teams]),
    )


@team.command("create")
@click.argument("name")
@_json_option
@_opens_data
def team_create(a: Admin, name: str, as_json: bool) -> None:
    """Create an empty team."""
    made = TeamOut.of(a.changes.create_team(a.actor, name))
    _emit(made, as_json, lambda: f"team {made.name} created")


@team.command("delete")
@click.argument("name")
@_yes_option
@_opens_data
def team_delete(a: Admin, name: str, yes: bool) -> None:
    """Delete a team; its members lose the roles they had through it."""
    a.changes.team(name)
    _confirm(yes, f"delete team {name}")
    a.changes.delete_team(a.actor, name)
    click.echo(f"team {name} deleted")


@team.command("members")
@click.argument("name")
@_json_option
@_opens_data
def team_members(a: Admin, name: str, as_json: bool) -> None:
    """List a team's members."""
    found = TeamMembers(members=a.store.team_members(name))
    _emit(found, as_json, lambda: _table(f"members of team {name}", ("user",), [(m,) for m in found.members]))


@team.command("add")
@click.argument("name")
@click.argument("user_name", metavar="USER")
@_opens_data
def team_add(a: Admin, name: str, user_name: str) -> None:
    """Add USER to team NAME."""
    a.changes.add_team_member(a.actor, name, user_name)
    click.echo(f"{user_name} is a member of team {name}")


@team.command("remove")
@click.argument("name")
@click.argument("user_name", metavar="USER")
@_opens_data
def team_remove(a: Admin, name: str, user_name: str) -> None:
    """Take USER out of team NAME."""
    a.changes.remove_team_member(a.actor, name, user_name)
    click.echo(f"{user_name} removed from team {name}")


# -- projects --------------------------------------------------------------------------------------------------


def _pull_policy(p: ProjectOut) -> str:
    demands = [
        *(["signed"] if p.content_trust else []),
        *([f"no {p.block_severity}+"] if p.block_severity else []),
        *(["scanned"] if p.block_unscanned else []),
        *([f"{len(p.allowlist)} accepted"] if p.allowlist else []),
    ]
    return ", ".join(demands) or "none"


def _projects_table(projects: Sequence[ProjectOut]) -> Table:
    rows = [(p.name, "public" if p.public else "private", _pull_policy(p), _when(p.created_at)) for p in projects]
    return _table("projects", ("name", "visibility", "pull policy", "created"), rows)


@admin.group()
def project() -> None:
    """Projects: the first path segment of repository names (library/nginx is in project library)."""


@project.command("list")
@_json_option
@_opens_data
def project_list(a: Admin, as_json: bool) -> None:
    """List every project."""
    found = ProjectList(projects=[ProjectOut.of(p) for p in a.store.list_projects()])
    _emit(found, as_json, lambda: _projects_table(found.projects))


@project.command("show")
@click.argument("name")
@_json_option
@_opens_data
def project_show(a: Admin, name: str, as_json: bool) -> None:
    """Show one project."""
    found = ProjectOut.of(a.changes.project(name))
    _emit(found, as_json, lambda: _projects_table([found]))


@project.command("create")
@click.argument("name")
@click.option("--public", is_flag=True, help="Anyone, anonymous callers too, may pull and list.")
@click.option("--admin", "admin_user", metavar="USER", help="Make USER the project admin.")
@_json_option
@_opens_data
def project_create(a: Admin, name: str, public: bool, admin_user: str | None, as_json: bool) -> None:
    """Create a project (private unless --public)."""
    if admin_user is not None:
        a.changes.user(admin_user)
    made = ProjectOut.of(a.changes.create_project(a.actor, name, public=public, admin=admin_user))
    _emit(made, as_json, lambda: _projects_table([made]))


@project.command("set")
@click.argument("name")
@click.option("--public/--private", required=True, help="Let anyone pull and list, or members only.")
@_json_option
@_opens_data
def project_set(a: Admin, name: str, public: bool, as_json: bool) -> None:
    """Make a project public or private."""
    changed = ProjectOut.of(a.changes.set_project_public(a.actor, name, public))
    _emit(changed, as_json, lambda: _projects_table([changed]))


def _accepted(value: str) -> AcceptedVulnerability:
    """``ID`` or ``ID@YYYY-MM-DD`` (accepted until that day, UTC) from the command line."""
    vuln, _, until = value.partition("@")
    expires = None
    if until:
        try:
            expires = dt.datetime.strptime(until, "%Y-%m-%d").replace(tzinfo=dt.UTC).timestamp()
        except ValueError:
            raise click.BadParameter(f"{value!r}: the expiry is YYYY-MM-DD") from None
    try:
        AcceptedVulnerabilityWire(id=vuln)  # the API's rule for an ID, so both doors accept the same
    except ValidationError:
        raise click.BadParameter(f"{value!r} is not a vulnerability ID") from None
    return AcceptedVulnerability(vuln, expires)


def _threshold(value: str) -> str | None:
    return None if value == "none" else value


@project.command("policy")
@click.argument("name")
@click.option("--content-trust/--no-content-trust", default=None, help="Pulls by tag must be signed.")
@click.option(
    "--block-severity",
    type=click.Choice(["critical", "high", "medium", "low", "none"]),
    help="Refuse pulls of images with a finding at or above this severity (none: off).",
)
@click.option("--block-unscanned/--allow-unscanned", default=None, help="Refuse images not scanned yet.")
@click.option("--accept", "accept", multiple=True, metavar="ID[@YYYY-MM-DD]", help="Accept a vulnerability.")
@click.option("--unaccept", "unaccept", multiple=True, metavar="ID", help="Take a vulnerability off the allowlist.")
@_json_option
@_opens_data
def project_policy(
    a: Admin,
    name: str,
    content_trust: bool | None,
    block_severity: str | None,
    block_unscanned: bool | None,
    accept: tuple[str, ...],
    unaccept: tuple[str, ...],
    as_json: bool,
) -> None:
    """Show or change what the registry demands of images pulled from project NAME.

    Without options it shows the policy. The checks run on every manifest GET: a refused pull gets the OCI
    DENIED error saying why, and the refusal is audited.
    """
    current = a.changes.project(name).policy
    accepted = {e.id: e for e in current.allowlist if e.id not in set(unaccept)}
    accepted.update((e.id, e) for e in map(_accepted, accept))
    policy = ProjectPolicy(
        content_trust=current.content_trust if content_trust is None else content_trust,
        block_severity=current.block_severity if block_severity is None else _threshold(block_severity),
        block_unscanned=current.block_unscanned if block_unscanned is None else block_unscanned,
        allowlist=tuple(accepted.values()),
    )
    project = a.changes.set_project_policy(a.actor, name, policy) if policy != current else a.changes.project(name)
    shown = ProjectOut.of(project)
    _emit(shown, as_json, lambda: _projects_table([shown]))


@project.command("delete")
@click.argument("name")
@_yes_option
@_opens_data
def project_delete(a: Admin, name: str, yes: bool) -> None:
    """Delete a project's memberships and robots (its repositories stay, reachable by administrators)."""
    a.changes.project(name)
    _confirm(yes, f"delete project {name}")
    a.changes.delete_project(a.actor, name)
    click.echo(f"project {name} deleted")


# -- members ---------------------------------------------------------------------------------------------------


@admin.group()
def member() -> None:
    """Project members: users and teams with a role (project_admin, maintainer, developer, guest, limited_guest)."""


def _who(user_name: str | None, team_name: str | None) -> dict[str, str]:
    if (user_name is None) == (team_name is None):
        raise click.UsageError("give exactly one of --user and --team")
    return {"user": user_name} if user_name is not None else {"team": str(team_name)}


_member_options = [
    click.option("--user", "user_name", metavar="USER", help="The member is this user."),
    click.option("--team", "team_name", metavar="TEAM", help="The member is this team."),
]


def _members_table(project_name: str, members: Sequence[MemberOut]) -> Table:
    return _table(f"members of {project_name}", ("kind", "name", "role"), [(m.kind, m.name, m.role) for m in members])


@member.command("list")
@click.argument("project_name", metavar="PROJECT")
@_json_option
@_opens_data
def member_list(a: Admin, project_name: str, as_json: bool) -> None:
    """List a project's members."""
    found = MemberList(members=[MemberOut.of(m) for m in a.store.members(project_name)])
    _emit(found, as_json, lambda: _members_table(project_name, found.members))


@member.command("set")
@click.argument("project_name", metavar="PROJECT")
@click.argument("role", metavar="ROLE", type=click.Choice([r.value for r in Role]))
@_member_options[0]
@_member_options[1]
@_json_option
@_opens_data
def member_set(
    a: Admin, project_name: str, role: str, user_name: str | None, team_name: str | None, as_json: bool
) -> None:
    """Give a user or a team ROLE in PROJECT (replacing the role it had)."""
    made = MemberOut.of(a.changes.set_member(a.actor, project_name, Role(role), **_who(user_name, team_name)))
    _emit(made, as_json, lambda: _members_table(project_name, [made]))


@member.command("remove")
@click.argument("project_name", metavar="PROJECT")
@_member_options[0]
@_member_options[1]
@_opens_data
def member_remove(a: Admin, project_name: str, user_name: str | None, team_name: str | None) -> None:
    """Take a user's or a team's membership of PROJECT away."""
    who = _who(user_name, team_name)
    a.changes.remove_member(a.actor, project_name, **who)
    click.echo(f"{next(iter(who.values()))} removed from {project_name}")


# -- robots ----------------------------------------------------------------------------------------------------


_PERMISSIONS = sorted(a.value for a in ROBOT_ACTIONS)


def _robots_table(robots: Sequence[RobotOut]) -> Table:
    rows = [
        (
            r.login,
            r.project or "(system)",
            ",".join(r.permissions),
            ",".join(r.repositories) if r.repositories is not None else "all",
            _when(r.expires_at) or "never",
            "disabled" if r.disabled else ("expired" if r.expired else "active"),
        )
        for r in robots
    ]
    return _table("robot accounts", ("login", "project", "permissions", "repositories", "expires", "state"), rows)


def _secret_shown(robot: RobotWithSecret, as_json: bool) -> None:
    """The robot with its secret: printed this once, never stored anywhere readable."""
    if as_json:
        click.echo(json.dumps(robot.model_dump(mode="json"), indent=2))
        return
    Console(soft_wrap=True).print(_robots_table([robot]))
    click.echo(f"login:  {robot.login}\nsecret: {robot.secret}")
    click.echo("The secret is shown only now: store it; `trustyard admin robot rotate` makes a new one.", err=True)


@admin.group()
def robot() -> None:
    """Robot accounts: chosen permissions in one project (or all: system robots), an expiry, a secret."""


@robot.command("list")
@click.option("--project", "project_name", metavar="PROJECT", help="The project's robots (default: system robots).")
@_json_option
@_opens_data
def robot_list(a: Admin, project_name: str | None, as_json: bool) -> None:
    """List a project's robots, or the system robots."""
    if project_name is not None:
        a.changes.project(project_name)
    found = RobotList(robots=[RobotOut.of(r) for r in a.store.list_robots(project_name)])
    _emit(found, as_json, lambda: _robots_table(found.robots))


@robot.command("show")
@click.argument("name")
@_json_option
@_opens_data
def robot_show(a: Admin, name: str, as_json: bool) -> None:
    """Show one robot (never its secret)."""
    found = RobotOut.of(a.changes.robot(name))
    _emit(found, as_json, lambda: _robots_table([found]))


_expiry_options = [
    click.option("--expires-in", type=click.IntRange(min=1), metavar="SECONDS", help="Expire this long from now."),
    click.option("--expires-at", type=Rfc3339(), help="Expire at this RFC 3339 time (2030-01-01T00:00:00Z)."),
]
_permission_option = click.option(
    "--permission",
    "permissions",
    multiple=True,
    type=click.Choice(_PERMISSIONS),
    help="A permission (repeat the option for several).",
)
_repository_option = click.option(
    "--repository",
    "repositories",
    multiple=True,
    metavar="PATTERN",
    help="Limit to repositories matching this pattern, e.g. lab/app-* (repeatable; default: all in scope).",
)


@robot.command("create")
@click.argument("name")
@click.option("--project", "project_name", metavar="PROJECT", help="The robot's project (default: a system robot).")
@_permission_option
@_repository_option
@_expiry_options[0]
@_expiry_options[1]
@_json_option
@_opens_data
def robot_create(
    a: Admin,
    name: str,
    project_name: str | None,
    permissions: tuple[str, ...],
    repositories: tuple[str, ...],
    expires_in: int | None,
    expires_at: dt.datetime | None,
    as_json: bool,
) -> None:
    """Create a robot account; its login (robot$NAME) and secret are printed this once."""
    if not permissions:
        raise click.UsageError("give at least one --permission")
    expiry = resolve_expiry(expires_in, expires_at)
    made, secret = a.changes.create_robot(
        a.actor,
        name,
        [Action(p) for p in permissions],
        project=project_name,
        expires_at=None if expiry is KEEP else expiry,
        repositories=repositories or None,
    )
    _secret_shown(RobotWithSecret.with_secret(made, secret), as_json)


@robot.command("update")
@click.argument("name")
@click.option("--disable/--enable", "disabled", default=None, help="Disable the robot, or enable it again.")
@_permission_option
@_repository_option
@click.option("--all-repositories", is_flag=True, help="Drop the repository patterns: every repository in scope.")
@_expiry_options[0]
@_expiry_options[1]
@click.option("--never-expires", is_flag=True, help="Remove the expiry.")
@_json_option
@_opens_data
def robot_update(
    a: Admin,
    name: str,
    disabled: bool | None,
    permissions: tuple[str, ...],
    repositories: tuple[str, ...],
    all_repositories: bool,
    expires_in: int | None,
    expires_at: dt.datetime | None,
    never_expires: bool,
    as_json: bool,
) -> None:
    """Enable or disable a robot, replace its permissions or repository patterns, change its expiry."""
    if repositories and all_repositories:
        raise click.UsageError("--repository and --all-repositories exclude each other")
    if never_expires and (expires_in is not None or expires_at is not None):
        raise click.UsageError("--never-expires excludes --expires-in and --expires-at")
    patterns: tuple[str, ...] | None = None if all_repositories else repositories
    changed = a.changes.update_robot(
        a.actor,
        name,
        disabled=disabled,
        permissions=[Action(p) for p in permissions] or None,
        repositories=patterns if (repositories or all_repositories) else KEEP,
        expires_at=None if never_expires else resolve_expiry(expires_in, expires_at),
    )
    _emit(RobotOut.of(changed), as_json, lambda: _robots_table([RobotOut.of(changed)]))


@robot.command("rotate")
@click.argument("name")
@_json_option
@_opens_data
def robot_rotate(a: Admin, name: str, as_json: bool) -> None:
    """Give a robot a new secret, printed this once; the old one stops working."""
    a.changes.robot(name)
    made, secret = a.changes.rotate_robot(a.actor, name)
    _secret_shown(RobotWithSecret.with_secret(made, secret), as_json)


@robot.command("delete")
@click.argument("name")
@_yes_option
@_opens_data
def robot_delete(a: Admin, name: str, yes: bool) -> None:
    """Delete a robot account."""
    a.changes.robot(name)
    _confirm(yes, f"delete robot {name}")
    a.changes.delete_robot(a.actor, name)
    click.echo(f"robot {name} deleted")


# -- audit -----------------------------------------------------------------------------------------------------


@admin.group()
def audit() -> None:
    """The audit log: who did what, when, from where, with what result (append-only)."""


def _audit_filters(command: Callable[..., None]) -> Callable[..., None]:
    """The filter options shared by ``audit query`` and ``audit export``, gathered into an ``AuditQuery``."""

    @functools.wraps(command)
    def run(
        a: Admin,
        actor: str | None,
        project: str | None,
        repository: str | None,
        action: str | None,
        result: str | None,
        since: dt.datetime | None,
        until: dt.datetime | None,
        after: int | None,
        **options: Any,
    ) -> None:
        start = None if since is None else since.timestamp()
        end = None if until is None else until.timestamp()
        command(a, AuditQuery(actor, project, repository, action, result, start, end, after), **options)

    for option in reversed(
        [
            click.option("--actor", help="A user name, robot$NAME, cli:USER, or '' for anonymous."),
            click.option("--project", help="Events in this project."),
            click.option("--repository", help="Events on this repository (full name)."),
            click.option("--action", help="e.g. login, pull, push, delete, member.set, robot.create."),
            click.option("--result", type=click.Choice(sorted(RESULTS))),
            click.option("--since", type=Rfc3339(), help="At or after this time (RFC 3339 or epoch seconds)."),
            click.option("--until", type=Rfc3339(), help="Before this time."),
            click.option("--after", type=click.IntRange(min=0), metavar="ID", help="Events after this event id."),
        ]
    ):
        run = option(run)
    return run


def _events_table(events: Sequence[AuditEventOut]) -> Table:
    rows = [
        (
            e.id,
            dt.datetime.fromtimestamp(e.at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
            e.actor or "(anonymous)",
            e.action,
            e.result,
            e.project,
            e.repository or e.target,
            e.address,
        )
        for e in events
    ]
    return _table("audit events (UTC)", ("id", "time", "actor", "action", "result", "project", "on", "from"), rows)


@audit.command("query")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True, help="At most this many.")
@_json_option
@_opens_data
@_audit_filters
def audit_query(a: Admin, filters: AuditQuery, limit: int, as_json: bool) -> None:
    """Show matching events, oldest first; continue with --after <the last id>."""
    events = a.audit.query(filters, limit=limit)
    page = AuditPage(events=[AuditEventOut.of(e) for e in events], next=events[-1].id if len(events) == limit else None)
    _emit(page, as_json, lambda: _events_table(page.events))


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[Any]:
    """stdout, or a new file only its owner may read (the audit log says who did what from where)."""
    if path is None:
        yield sys.stdout
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as e:
        raise AuthError(f"cannot write {path}: {e.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        yield out


@audit.command("export")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE (mode 0600).")
@_opens_data
@_audit_filters
def audit_export(a: Admin, filters: AuditQuery, output: Path | None) -> None:
    """Write every matching event as JSON lines (one object per line), to stdout or --output."""
    with _output(output) as out:
        count = a.audit.export(out, filters)
    if output is not None:
        click.echo(f"{count} events written to {output}", err=True)
