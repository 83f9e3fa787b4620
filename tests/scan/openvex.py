"""OpenVEX documents as the tests attach them to images: "not affected" statements about one image."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from registry.conftest import EMPTY_CONFIG, Blob, ManifestDoc
from trustyard.oci.mediatypes import MediaType
from trustyard.scan.states import VEX_ARTIFACT_TYPE


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


def vex_referrer(subject: ManifestDoc, vulnerability: str) -> ManifestDoc:
    """An OCI artifact carrying an OpenVEX document that says ``subject`` is not affected by ``vulnerability``."""
    layer = Blob(not_affected(subject.digest, [vulnerability]), VEX_ARTIFACT_TYPE)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MediaType.OCI_MANIFEST,
        "artifactType": VEX_ARTIFACT_TYPE,
        "config": EMPTY_CONFIG.descriptor(),
        "layers": [layer.descriptor()],
        "subject": subject.descriptor(),
    }
    return ManifestDoc(json.dumps(manifest).encode(), MediaType.OCI_MANIFEST, (EMPTY_CONFIG, layer))
