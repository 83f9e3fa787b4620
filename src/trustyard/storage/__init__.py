"""Blob stores behind one protocol (``BlobStore``); drivers are listed here explicitly."""

from __future__ import annotations

from trustyard.storage.base import BlobNotFoundError, BlobStore, StorageError
from trustyard.storage.filesystem import FilesystemBlobStore

DRIVERS: dict[str, type[FilesystemBlobStore]] = {"filesystem": FilesystemBlobStore}

__all__ = ["DRIVERS", "BlobNotFoundError", "BlobStore", "FilesystemBlobStore", "StorageError"]
