"""The plugin starts without the registry's database layer: ``trustyard authz serve`` never opens a database.

Importing SQLAlchemy and Alembic (through ``trustyard.auth``'s package) roughly doubled the plugin's start, which
systemd socket activation pays on the first ``docker`` command after a boot or a crash.
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("sqlalchemy", "alembic", "trustyard.db", "trustyard.auth")


def test_plugin_server_imports_no_database_layer() -> None:
    probe = (
        "import sys, trustyard.authz.server, trustyard.cli.authz\n"
        f"print(sorted(m for m in sys.modules for h in {HEAVY!r} if m == h or m.startswith(h + '.')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
