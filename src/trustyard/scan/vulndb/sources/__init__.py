"""Every advisory source, listed explicitly; ``--source NAME`` picks one, otherwise the content decides.

Adding a source is adding one module with a ``Source`` and listing it here. The NVD's records are indexed
under the pseudo-ecosystem ``CPE`` (``sources/nvd.py``), which the matcher asks for components with a CPE.
"""

from __future__ import annotations

from trustyard.scan.vulndb.errors import UnrecognizedSourceError
from trustyard.scan.vulndb.sources.alpine import AlpineSecdbSource
from trustyard.scan.vulndb.sources.base import Document, Source, read_advisories, read_feed
from trustyard.scan.vulndb.sources.debian import DebianTrackerSource
from trustyard.scan.vulndb.sources.nvd import NvdSource
from trustyard.scan.vulndb.sources.osv import OsvSource

SOURCES: tuple[Source, ...] = (OsvSource(), DebianTrackerSource(), AlpineSecdbSource(), NvdSource())

_BY_NAME: dict[str, Source] = {}
for _source in SOURCES:
    if _source.name in _BY_NAME:
        raise RuntimeError(f"two advisory sources are named {_source.name!r}")
    _BY_NAME[_source.name] = _source


def source_named(name: str) -> Source:
    """The source called ``name``; ``UnrecognizedSourceError`` listing the known names otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnrecognizedSourceError(f"unknown source {name!r}; known: {', '.join(sorted(_BY_NAME))}") from None


def detect(document: Document) -> Source:
    """The one source whose format ``document`` is in; ``UnrecognizedSourceError`` if none is."""
    for source in SOURCES:
        if source.recognizes(document.data):
            return source
    raise UnrecognizedSourceError(
        f"{document.origin}: not in a known advisory format ({', '.join(sorted(_BY_NAME))}); pass --source"
    )


__all__ = ["SOURCES", "Document", "Source", "detect", "read_advisories", "read_feed", "source_named"]
