"""OpenVEX documents as the tests attach them to images: "not affected" statements about one image."""

from __future__ import annotations

import json
from datetime import UTC, datetime


def not_affected(digest: str, ids: list[str]) -> bytes:
    """An OpenVEX v0.2.0 document saying the image ``pkg:oci/app@digest`` is not affected by ``ids``."""
    vex = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://example.org/vex/1",
        "author": "the test",
        "timestamp": datetime.now(UTC).isoformat(),
        "version": 1,
        "statements": [
            {
                "vulnerability": {"name": i},
                "products": [{"@id": f"pkg:oci/app@{digest}"}],
                "status": "not_affected",
                "justification": "vulnerable_code_not_in_execute_path",
            }
            for i in ids
        ],
    }
    return json.dumps(vex).encode()
