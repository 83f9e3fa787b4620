"""rpm's package database in any of its three formats, told apart by magic, never by file name.

rpm 4.16+ writes SQLite (``rpmdb.sqlite``) by default, SUSE uses ndb (``Packages.db``), older releases the
Berkeley DB hash file (``Packages``); an image can carry any of them, and a file can be renamed. All three
hold rpm header blobs, which ``rpm.package_from_header`` turns into packages.
"""

from __future__ import annotations

from trustyard.scan.parsers.rpm import SQLITE_MAGIC, RpmError, RpmPackage, package_from_header, parse_sqlite_rpmdb
from trustyard.scan.parsers.rpmdb_bdb import bdb_headers, is_bdb_hash
from trustyard.scan.parsers.rpmdb_ndb import is_ndb, ndb_headers


def parse_rpmdb(data: bytes) -> list[RpmPackage]:
    """Every package of an rpm database (SQLite, ndb or Berkeley DB hash); ``RpmError`` for anything else."""
    if data.startswith(SQLITE_MAGIC):
        return parse_sqlite_rpmdb(data)
    if is_ndb(data):
        return [package_from_header(blob) for blob in ndb_headers(data)]
    if is_bdb_hash(data):
        return [package_from_header(blob) for blob in bdb_headers(data)]
    raise RpmError("not an rpm database (neither SQLite, ndb nor Berkeley DB hash)")
