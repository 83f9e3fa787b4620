"""rpm's Berkeley DB ``Packages`` and ndb ``Packages.db`` read in pure Python, against rpm itself.

The packages are real: the 129 header blobs of the shared CBL-Mariner fixture's ``rpmdb.sqlite``. The BDB
files are written by Berkeley DB itself (``db5.3_load`` from Debian's db5.3-util, the library rpm used to
link) in both byte orders and three page sizes (512 forces overflow chains, 65536 keeps small headers
inline), and the golden list is ``rpm -qa --qf`` with rpm's own read-only BDB backend (``bdb_ro``) on the
very same file.

ndb: Debian's rpm is built without the ndb backend (``rpm --showrc``: "available backends: sqlite bdb_ro
dummy"; the test checks that this is still so), and no real ndb file is in the fixtures or reachable offline.
So ``write_ndb`` below lays the real header blobs out as rpm's ``lib/backend/ndb/rpmpkg.c`` writes them
(slot pages, blob head, Adler-32 tail), and the golden list is ``rpm -qa`` on the SQLite database holding the
same headers. The parser is thereby checked against the format's definition, not against rpm's writer.
"""

from __future__ import annotations

import sqlite3
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scan.test_parsers import mariner_rpmdb
from scan.tools import need
from trustyard.scan.analyzers.rpm import RpmAnalyzer
from trustyard.scan.parsers.rpm import RpmError, RpmPackage, package_from_header, parse_sqlite_rpmdb
from trustyard.scan.parsers.rpmdb import parse_rpmdb
from trustyard.scan.parsers.rpmdb_bdb import bdb_headers
from trustyard.scan.parsers.rpmdb_ndb import ndb_headers

QUERY = "%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\t%{LICENSE}\\t%{VENDOR}\\n"


def headers() -> list[tuple[int, bytes]]:
    """(header number, blob) of every package in the real Mariner rpmdb.sqlite."""
    connection = sqlite3.connect(":memory:")
    try:
        image = bytearray(mariner_rpmdb())
        image[18:20] = b"\x01\x01"  # the fixture is in WAL mode; an in-memory copy reads in rollback mode
        connection.deserialize(bytes(image))
        rows = connection.execute("SELECT hnum, blob FROM Packages ORDER BY hnum").fetchall()
    finally:
        connection.close()
    return [(int(n), bytes(b)) for n, b in rows]


def write_bdb(folder: Path, rows: list[tuple[int, bytes]], *, pagesize: int, big_endian: bool) -> Path:
    """``folder/Packages`` written by Berkeley DB's own db_load: keys are header numbers in the database's byte
    order (what rpm writes on such a machine), key 0 the next-number counter as rpm keeps it."""
    load = need("db5.3_load", "db5.3-util")
    order = ">" if big_endian else "<"
    lines = ["VERSION=3", "format=bytevalue", "type=hash", f"db_pagesize={pagesize}"]
    lines += [f"db_lorder={4321 if big_endian else 1234}", "HEADER=END"]
    lines += [" " + struct.pack(order + "I", 0).hex(), " " + struct.pack(order + "I", rows[-1][0] + 1).hex()]
    for number, blob in rows:
        lines += [" " + struct.pack(order + "I", number).hex(), " " + blob.hex()]
    lines.append("DATA=END")
    folder.mkdir(parents=True)
    dump = folder.parent / f"{folder.name}.dump"
    dump.write_text("\n".join(lines) + "\n")
    subprocess.run([load, "-f", str(dump), str(folder / "Packages")], check=True, capture_output=True)
    return folder / "Packages"


def write_ndb(path: Path, rows: list[tuple[int, bytes]]) -> Path:
    """An ndb ``Packages.db`` laid out as rpm's rpmpkg.c writes it (see the module docstring for why)."""
    slot_pages = 1 + (len(rows) + 2) * 16 // 4096
    slots = bytearray(slot_pages * 4096)
    blobs = bytearray()
    block = slot_pages * 4096 // 16
    for i, (number, blob) in enumerate(rows):
        count = (16 + len(blob) + 12 + 15) // 16
        head = struct.pack("<4sIII", b"BlbS", number, 1700000000, len(blob))
        padding = bytes(count * 16 - 16 - len(blob) - 12)
        body = head + blob + padding
        blobs += body + struct.pack("<II4s", zlib.adler32(body), len(blob), b"BlbE")
        struct.pack_into("<4sIII", slots, 32 + 16 * i, b"Slot", number, block, count)
        block += count
    for at in range(32 + 16 * len(rows), len(slots), 16):
        struct.pack_into("<4sIII", slots, at, b"Slot", 0, 0, 0)
    struct.pack_into("<4sIIII", slots, 0, b"RpmP", 0, len(rows), slot_pages, rows[-1][0] + 1)
    path.write_bytes(bytes(slots) + bytes(blobs))
    return path


def rpm_query(dbpath: Path, backend: str | None = None) -> list[tuple[str, ...]]:
    """``rpm -qa --qf`` on ``dbpath`` (rpm's own reading of the database), sorted."""
    rpm = need("rpm", "rpm")
    define = ["--define", f"_db_backend {backend}"] if backend else []
    out = subprocess.run(
        [rpm, "--dbpath", str(dbpath), *define, "-qa", "--qf", QUERY], capture_output=True, text=True, check=True
    ).stdout
    return sorted(tuple(line.split("\t")) for line in out.splitlines())


def as_query(packages: list[RpmPackage]) -> list[tuple[str, ...]]:
    """Our packages in ``QUERY``'s shape (rpm prints ``(none)`` for a missing tag)."""

    def s(value: object) -> str:
        return "(none)" if value is None else str(value)

    return sorted(
        (p.name, s(p.epoch), p.version, p.release, s(p.arch), s(p.source_rpm), s(p.license), s(p.vendor))
        for p in packages
    )


@pytest.fixture(scope="module")
def sqlite_packages() -> list[RpmPackage]:
    return parse_sqlite_rpmdb(mariner_rpmdb())


@pytest.mark.parametrize(("pagesize", "big_endian"), [(512, False), (4096, False), (65536, False), (4096, True)])
def test_bdb_packages_equal_rpms_reading_and_the_sqlite_path(
    tmp_path: Path, sqlite_packages: list[RpmPackage], pagesize: int, big_endian: bool
) -> None:
    path = write_bdb(tmp_path / "db", headers(), pagesize=pagesize, big_endian=big_endian)
    packages = parse_rpmdb(path.read_bytes())
    assert len(packages) == 129
    assert as_query(packages) == rpm_query(path.parent, "bdb_ro")
    assert packages == sqlite_packages  # same order (header number), same files and digests


def test_ndb_packages_equal_rpms_reading_of_the_same_headers(tmp_path: Path, sqlite_packages: list[RpmPackage]) -> None:
    showrc = subprocess.run([need("rpm", "rpm"), "--showrc"], capture_output=True, text=True, check=True).stdout
    backends = next(line for line in showrc.splitlines() if "available backends" in line)
    assert "ndb" not in backends.split(":", 1)[1].split(), "rpm can now write ndb: build the fixture with it"
    sqlite_dir = tmp_path / "sqlite"
    sqlite_dir.mkdir()
    (sqlite_dir / "rpmdb.sqlite").write_bytes(mariner_rpmdb())
    packages = parse_rpmdb(write_ndb(tmp_path / "Packages.db", headers()).read_bytes())
    assert as_query(packages) == rpm_query(sqlite_dir, "sqlite")
    assert packages == sqlite_packages


def test_the_analyzer_reads_each_format_at_each_place(tmp_path: Path) -> None:
    rows = headers()
    bdb = write_bdb(tmp_path / "bdb", rows, pagesize=4096, big_endian=False).read_bytes()
    ndb = write_ndb(tmp_path / "Packages.db", rows).read_bytes()
    analyzer = RpmAnalyzer()
    reference = analyzer.analyze({"var/lib/rpm/rpmdb.sqlite": mariner_rpmdb()})
    for path, data in [("var/lib/rpm/Packages", bdb), ("usr/lib/sysimage/rpm/Packages.db", ndb)]:
        assert analyzer.wants(path)
        found = analyzer.analyze({path: data})
        assert [c.purl for c in found] == [c.purl for c in reference]
        assert {c.evidence for c in found} == {path}
        assert [c.files for c in found] == [c.files for c in reference]


def test_malformed_databases_are_refused() -> None:
    for data in (b"", b"\x00" * 4096, b"RpmP" + b"\x00" * 28, b"RpmP\x01" + b"\x00" * 27):
        with pytest.raises(RpmError):
            parse_rpmdb(data)
    meta = bytearray(512)
    struct.pack_into("<IIII", meta, 12, 0x061561, 9, 4096, 0)  # page size says 4096, file has 512 bytes
    with pytest.raises(RpmError, match="truncated"):
        bdb_headers(bytes(meta))


@pytest.fixture(scope="module")
def small_dbs(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """A real BDB (512-byte pages: overflow chains everywhere) and an ndb of the first 6 headers."""
    rows = headers()[:6]
    folder = tmp_path_factory.mktemp("fuzz")
    bdb = write_bdb(folder / "bdb", rows, pagesize=512, big_endian=False).read_bytes()
    return bdb, write_ndb(folder / "Packages.db", rows).read_bytes()


def _parse_or_refuse(data: bytes, parse: object) -> None:
    assert callable(parse)
    try:
        for blob in parse(data):
            package_from_header(blob)
    except RpmError:
        pass


FUZZ = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 255)), min_size=1, max_size=12))
def test_fuzz_corrupted_bdb_pages_never_crash_or_loop(
    small_dbs: tuple[bytes, bytes], flips: list[tuple[int, int]]
) -> None:
    data = bytearray(small_dbs[0])
    for at, mask in flips:
        data[at % len(data)] ^= mask
    _parse_or_refuse(bytes(data), bdb_headers)


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 255)), min_size=1, max_size=12))
def test_fuzz_corrupted_ndb_never_crashes(small_dbs: tuple[bytes, bytes], flips: list[tuple[int, int]]) -> None:
    data = bytearray(small_dbs[1])
    for at, mask in flips:
        data[at % len(data)] ^= mask
    _parse_or_refuse(bytes(data), ndb_headers)


@FUZZ
@given(body=st.binary(min_size=0, max_size=4096), pagesize=st.sampled_from([512, 1024, 4096]))
def test_fuzz_garbage_after_a_valid_bdb_meta_page(body: bytes, pagesize: int) -> None:
    meta = bytearray(pagesize)
    last = len(body) // pagesize
    struct.pack_into("<IIIIII", meta, 12, 0x061561, 9, pagesize, 0, 0, last)
    struct.pack_into("<I", meta, 72, last)
    _parse_or_refuse(bytes(meta) + body, bdb_headers)


@FUZZ
@given(body=st.binary(min_size=0, max_size=8192))
def test_fuzz_garbage_ndb(body: bytes) -> None:
    _parse_or_refuse(b"RpmP" + struct.pack("<III", 0, 1, 1) + body, ndb_headers)
