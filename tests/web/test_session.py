"""The session codec and its key file, without HTTP: signing, tampering, expiry, sign-out and the CSRF check."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import pytest

from trustyard.privatefile import create_private
from trustyard.web.session import (
    KEY_BYTES,
    CsrfError,
    SessionCodec,
    SessionKeyError,
    load_or_create_key,
)

KEY = bytes(range(32))


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_signed_in_session_round_trips_and_differs_from_the_anonymous_one() -> None:
    codec = SessionCodec(KEY)
    anonymous = codec.anonymous()
    session = codec.signed_in("alice", "7@123.0")
    assert codec.decode(codec.encode(session)) == session
    assert session.signed_in and not anonymous.signed_in
    assert (session.sid, session.csrf) != (anonymous.sid, anonymous.csrf)


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda v: v[:-2] + ("A" if v[-2] != "A" else "B") + v[-1], id="signature-changed"),
        pytest.param(lambda v: "e30" + v[3:], id="payload-changed"),
        pytest.param(lambda v: v.replace(".", ""), id="no-separator"),
        pytest.param(lambda v: v + ".x", id="two-separators"),
        pytest.param(lambda v: "!!!." + v.split(".")[1], id="not-base64"),
        pytest.param(lambda v: "x" * 5000, id="too-long"),
        pytest.param(lambda v: "", id="empty"),
    ],
)
def test_a_tampered_cookie_is_no_session(mangle: object) -> None:
    codec = SessionCodec(KEY)
    value = codec.encode(codec.signed_in("root", "1@1.0"))
    assert callable(mangle)
    assert codec.decode(mangle(value)) is None


def test_a_cookie_signed_with_another_key_is_refused() -> None:
    mine, theirs = SessionCodec(KEY), SessionCodec(bytes(reversed(KEY)))
    assert mine.decode(theirs.encode(theirs.signed_in("root", "1@1.0"))) is None


def test_a_session_expires() -> None:
    clock = Clock()
    codec = SessionCodec(KEY, clock=clock)
    value = codec.encode(codec.signed_in("alice", None))
    clock.now += 8 * 3600 - 1
    assert codec.decode(value) is not None
    clock.now += 2
    assert codec.decode(value) is None


def test_a_revoked_session_is_refused_but_others_are_not() -> None:
    codec = SessionCodec(KEY)
    gone, kept = codec.signed_in("alice", None), codec.signed_in("alice", None)
    codec.revoke(gone)
    assert codec.decode(codec.encode(gone)) is None
    assert codec.decode(codec.encode(kept)) == kept


def test_the_csrf_check_wants_exactly_the_session_token() -> None:
    codec = SessionCodec(KEY)
    session = codec.anonymous()
    codec.check_csrf(session, session.csrf)
    for sent in (None, "", session.csrf[:-1], codec.anonymous().csrf):
        with pytest.raises(CsrfError):
            codec.check_csrf(session, sent)


def test_a_changed_field_breaks_the_signature() -> None:
    codec = SessionCodec(KEY)
    session = codec.signed_in("alice", None)
    forged = SessionCodec(bytes(32)).encode(dataclasses.replace(session, subject="root"))
    assert codec.decode(forged) is None


def test_the_key_file_is_created_private_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "web" / "session-key"
    key = load_or_create_key(path)
    assert len(key) == KEY_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key
    assert [p.name for p in path.parent.iterdir()] == ["session-key"]


def test_a_key_file_others_may_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "session-key"
    path.write_bytes(os.urandom(KEY_BYTES))
    path.chmod(0o644)
    with pytest.raises(SessionKeyError, match="chmod 600"):
        load_or_create_key(path)


def test_a_key_file_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "session-key"
    path.write_bytes(b"short")
    path.chmod(0o600)
    with pytest.raises(SessionKeyError, match="not 32 bytes"):
        load_or_create_key(path)


def test_of_two_processes_creating_the_key_the_first_wins(tmp_path: Path) -> None:
    path = tmp_path / "web" / "session-key"
    first = create_private(path, b"a" * KEY_BYTES, "session key")
    second = create_private(path, b"b" * KEY_BYTES, "session key")  # lost the race: gets the first one's key
    assert first == second == b"a" * KEY_BYTES == load_or_create_key(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["session-key"]  # no temporary file left behind


def test_a_key_path_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "session-key"
    path.mkdir()
    with pytest.raises(SessionKeyError, match="not a regular file"):
        load_or_create_key(path)
