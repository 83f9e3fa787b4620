"""Secret files a server keeps in its data dir (the token signing key, the web session key): read only when
nobody but their owner may read them, created with mode 0600 so that, of processes racing to create one, the
first one's content is the one everybody uses.

A new file is written and fsynced under a temporary name, then hard-linked into place: the link fails if the
file already exists, so a racing process never sees it half written and never replaces it.

Not here: what the bytes mean (the callers parse keys and check their size).
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from trustyard.errors import TrustyardError

__all__ = ["PrivateFileError", "create_private", "read_private"]


class PrivateFileError(TrustyardError):
    """A secret file cannot be read or created, or others may read it (the server does not start)."""


def read_private(path: Path, what: str) -> bytes | None:
    """The bytes of the secret file ``path`` (``what`` names it in errors); ``None`` when it does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as e:
        raise PrivateFileError(f"cannot open {what} {path}: {e.strerror}") from e
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise PrivateFileError(f"{what} {path} is not a regular file")
        if info.st_mode & 0o077:
            raise PrivateFileError(
                f"{what} {path} has mode {stat.S_IMODE(info.st_mode):04o}; it must be readable by its owner only:"
                f" chmod 600 {path}"
            )
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read()
    except OSError as e:
        raise PrivateFileError(f"cannot read {what} {path}: {e.strerror}") from e
    finally:
        os.close(fd)


def create_private(path: Path, data: bytes, what: str) -> bytes:
    """Create ``path`` holding ``data`` (mode 0600, its folder 0700) unless it exists; what the file holds then."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:  # another process won the race: use its file
            existing = read_private(path, what)
            if existing is None:
                raise PrivateFileError(f"{what} {path} vanished while it was being created") from None
            return existing
        finally:
            temp.unlink()
    except OSError as e:
        raise PrivateFileError(f"cannot create {what} {path}: {e.strerror}") from e
    return data
