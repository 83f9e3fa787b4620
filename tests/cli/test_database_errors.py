"""A metadata database that cannot be used stops ``trustyard serve`` and ``trustyard gc`` with exit code 1 and
one line on stderr: what failed and why, the password redacted, never a traceback.

In-process through click's runner (the console script itself is covered by ``test_serve.py``). Not here: the
messages' wording for each driver failure (``tests/db/test_engine.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from trustyard.cli import main

PASSWORD = "hunter2"


def run(*args: str) -> tuple[int, str]:
    """Exit code and stderr of ``trustyard ARGS`` with no TRUSTYARD_* setting from the caller's environment."""
    result = CliRunner(env={"TRUSTYARD_DATABASE_URL": None, "TRUSTYARD_CONFIG": None, "COLUMNS": "80"}).invoke(
        main, list(args)
    )
    return result.exit_code, result.stderr


def assert_one_clean_line(code: int, stderr: str, expected: str) -> None:
    assert code == 1, stderr
    assert stderr.startswith("error: ") and stderr.endswith("\n") and stderr.count("\n") == 1, stderr
    assert expected in stderr
    assert "Traceback" not in stderr and PASSWORD not in stderr


CASES = {
    "not-a-url": ("nonsense", "Could not parse SQLAlchemy URL"),
    "unsupported-driver": (f"mysql://someone:{PASSWORD}@db.example/registry", "someone:***@db.example"),
    "refused": (f"postgresql://someone:{PASSWORD}@127.0.0.1:1/registry", "Connection refused"),
    "markup-in-url": ("postgresql://someone@127.0.0.1:1/[/bold]x", "/[/bold]x"),
}


@pytest.mark.parametrize("command", ["serve", "gc"])
@pytest.mark.parametrize(("url", "expected"), CASES.values(), ids=CASES.keys())
def test_unusable_database_url_is_one_line(command: str, url: str, expected: str, tmp_path: Path) -> None:
    code, stderr = run(command, "--data-dir", str(tmp_path / "data"), "--database-url", url)
    assert_one_clean_line(code, stderr, expected)


@pytest.mark.postgres
def test_missing_postgresql_database_is_one_line(postgresql_url: str, tmp_path: Path) -> None:
    url = postgresql_url.rsplit("/", 1)[0] + "/no_such_database"
    code, stderr = run("serve", "--data-dir", str(tmp_path / "data"), "--database-url", url)
    assert_one_clean_line(code, stderr, 'database "no_such_database" does not exist')


def test_impossible_sqlite_folder_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    code, stderr = run("serve", "--data-dir", str(tmp_path / "a-file" / "data"))
    assert code == 1
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
