"""``trustyard sbom`` as a command: every format, --output, the layer cache in the data dir, and bad references.

Most cases run the command in-process with click's runner (output is not a terminal there, so no progress
bar may appear in it); the error case runs the installed console script, as a user would.
"""

from __future__ import annotations

import json
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from scan.shared import OCI_ALPINE_APP, OCI_ALPINE_APP_TAG, expected
from trustyard.cli import main
from trustyard.cli.sbom import _index
from trustyard.scan.indexer import Indexer

OCI = f"oci:{OCI_ALPINE_APP}:{OCI_ALPINE_APP_TAG}"


def run(*args: str, data_dir: Path) -> Result:
    """``trustyard sbom ARGS`` in-process with its own data dir."""
    return CliRunner().invoke(main, ["sbom", *args, "--data-dir", str(data_dir)], catch_exceptions=False)


def test_table_lists_every_component_with_its_layer(tmp_path: Path) -> None:
    result = run(OCI, data_dir=tmp_path)
    assert result.exit_code == 0, result.stderr
    final = expected("oci-alpine-app.expected.json")["final"]
    for package in final["apk"] + final["python"]:
        assert package["name"] in result.stdout
    assert "busybox 1.36.1-r29" in result.stdout  # the source package column
    assert "layers" not in result.stderr  # no progress bar when not on a terminal


def test_json_output_to_a_file_then_from_the_cache(tmp_path: Path) -> None:
    out = tmp_path / "sbom.json"
    first = run(OCI, "--format", "json", "--output", str(out), data_dir=tmp_path / "data")
    assert first.exit_code == 0, first.stderr
    assert first.stdout == ""
    cold = json.loads(out.read_text())
    assert [layer["cached"] for layer in cold["layers"]] == [False, False, False]
    assert list((tmp_path / "data" / "scan-cache").rglob("*.json"))
    second = run(OCI, "--format", "json", data_dir=tmp_path / "data")
    warm = json.loads(second.stdout)
    assert [layer["cached"] for layer in warm["layers"]] == [True, True, True]
    assert warm["components"] == cold["components"]
    assert warm["files"] == cold["files"]


def test_no_cache_reads_every_layer_and_stores_nothing(tmp_path: Path) -> None:
    result = run(OCI, "--format", "json", "--no-cache", data_dir=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert not (tmp_path / "scan-cache").exists()


@pytest.mark.parametrize(("fmt", "marker"), [("cyclonedx-json", "specVersion"), ("spdx-json", "spdxVersion")])
def test_document_formats(fmt: str, marker: str, tmp_path: Path) -> None:
    result = run(OCI, "--format", fmt, data_dir=tmp_path)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert marker in document


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("oci:/nonexistent/layout", "/nonexistent/layout does not exist"),
        ("nosuch:thing", "unknown image source"),
        (f"oci:{OCI_ALPINE_APP}:no-such-tag", "no image tagged 'no-such-tag'"),
    ],
)
def test_a_bad_image_reference_is_a_one_line_error(image: str, message: str, tmp_path: Path) -> None:
    done = subprocess.run(
        ["trustyard", "sbom", image, "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: ") and message in done.stderr


def test_progress_bar_counts_layers_on_a_terminal(tmp_path: Path) -> None:
    screen = StringIO()
    report = _index(OCI, Indexer(), Console(file=screen, force_terminal=True, width=100))
    assert len(report.layers) == 3
    assert "layer 3/3" in screen.getvalue()
