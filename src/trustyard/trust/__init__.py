"""Content trust: Notary v1-compatible TUF metadata, its validation, storage and HTTP service.

``metadata`` parses Notary-format TUF files into typed objects, ``validation`` decides whether an update is
acceptable (as strictly as notary-server), ``store`` keeps the files verbatim, ``service`` ties them together
with the server-held timestamp and snapshot keys, and ``api`` is the thin ``/v2/<gun>/_trust/`` HTTP edge.
"""
