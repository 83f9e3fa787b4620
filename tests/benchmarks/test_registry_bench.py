"""The registry benchmark's pure helpers: image generation, wrk and py-spy output parsing, report rendering.

Runs no server and no client and asserts no speed (DESIGN.md: speed is measured in benchmarks/, never asserted
in a test); the benchmark itself is `python benchmarks/registry.py`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # `pytest` without `python -m`: make the repository root importable
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import registry as bench  # noqa: E402


def _sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def test_build_image_writes_a_valid_oci_layout(tmp_path: Path) -> None:
    spec = bench.ImageSpec("tiny", layers=3, payload_bytes=1000)
    image = bench.build_image(tmp_path / "layout", spec, tag="t1")

    assert json.loads((image.layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((image.layout / "index.json").read_text())
    (entry,) = index["manifests"]
    assert entry["digest"] == image.manifest.digest
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "t1"

    def blob(digest: str) -> bytes:
        return (image.layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()

    manifest_bytes = blob(image.manifest.digest)
    assert _sha256(manifest_bytes) == image.manifest.digest
    manifest = json.loads(manifest_bytes)
    assert manifest["mediaType"] == bench.OCI_MANIFEST
    config = json.loads(blob(manifest["config"]["digest"]))
    assert config["rootfs"]["diff_ids"] == [layer.diff_id for layer in image.layers]
    assert [x["digest"] for x in manifest["layers"]] == [layer.blob.digest for layer in image.layers]

    payloads = set()
    for layer in image.layers:
        compressed = blob(layer.blob.digest)
        assert _sha256(compressed) == layer.blob.digest and len(compressed) == layer.blob.size
        tar_bytes = gzip.decompress(compressed)
        assert _sha256(tar_bytes) == layer.diff_id
        with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
            (member,) = tar.getmembers()
            extracted = tar.extractfile(member)
            assert extracted is not None
            payload = extracted.read()
        assert member.isreg() and len(payload) == 1000
        payloads.add(payload)
    assert len(payloads) == 3  # every layer has its own random content


def test_build_image_is_reproducible_and_cached(tmp_path: Path) -> None:
    spec = bench.ImageSpec("tiny", layers=1, payload_bytes=700)
    first = bench.cached_image(tmp_path / "cache", spec)
    again = bench.cached_image(tmp_path / "cache", spec)
    rebuilt = bench.build_image(tmp_path / "other", spec)
    assert again == first
    assert rebuilt.manifest == first.manifest and rebuilt.layers == first.layers


WRK_STDOUT = """Running 10s test @ http://127.0.0.1:5000/v2/bench/large/manifests/bench
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.10ms  300.00us   9.00ms   90.00%
    Req/Sec     7.30k   200.00     7.80k    70.00%
  145000 requests in 10.00s, 70.00MB read
Requests/sec:  14500.00
Transfer/sec:      7.00MB
WRK_JSON {"requests": 145000, "duration_us": 10000000, "bytes": 73400320, "errors_connect": 0, \
"errors_read": 0, "errors_write": 0, "errors_status": 2, "errors_timeout": 0, "latency_mean_us": 1100.5, \
"latency_p50_us": 1000, "latency_p90_us": 1500, "latency_p99_us": 4000, "latency_max_us": 9000}
"""


def test_parse_wrk_output() -> None:
    result = bench.parse_wrk_output(WRK_STDOUT)
    assert result.requests_per_s == 14500.0
    assert (result.errors, result.status_errors) == (2, 2)
    assert (result.latency_p50_ms, result.latency_p99_ms) == (1.0, 4.0)


def test_wrk_script_is_lua_with_the_accept_header() -> None:
    token = 'wrk.headers["Authorization"] = "Bearer abc"\n'
    script = bench.WRK_SCRIPT % {"accept": bench.MANIFEST_ACCEPT, "extra": token}
    assert f'wrk.headers["Accept"] = "{bench.MANIFEST_ACCEPT}"' in script
    assert token in script
    assert "%%" not in script and "latency:percentile(99)" in script


def test_parse_curl_output_reads_status_and_headers() -> None:
    text = '202\n{"location":["/v2/a/blobs/uploads/u?_state=x%3D"],"range":["0-1023"],"x-many":["1","2"]}'
    response = bench.parse_curl_output(text)
    assert response.status == 202
    assert response.headers["location"] == "/v2/a/blobs/uploads/u?_state=x%3D"
    assert response.headers["x-many"] == "2"
    assert bench.range_end(response) == 1023
    assert bench.parse_curl_output("201\n") == bench.CurlResponse(201, {})
    assert bench.range_end(bench.parse_curl_output("202\n{}")) is None
    for bad in ("", "curl: (7) failed\n{}", '200\n{"a": '):
        try:
            bench.parse_curl_output(bad)
        except bench.BenchmarkError:
            continue
        raise AssertionError(f"{bad!r} was accepted")


def test_upload_url_makes_locations_absolute_and_appends_the_digest() -> None:
    host, digest = "127.0.0.1:5000", "sha256:" + "ab" * 32
    assert bench.upload_url(host, "/v2/a/b/blobs/uploads/u1") == "http://127.0.0.1:5000/v2/a/b/blobs/uploads/u1"
    assert bench.upload_url(host, "/v2/a/blobs/uploads/u1", digest) == (
        f"http://127.0.0.1:5000/v2/a/blobs/uploads/u1?digest={digest}"
    )
    # docker-registry: a query already there (its _state, percent-encoded), kept byte for byte
    assert bench.upload_url(host, "/v2/a/blobs/uploads/u2?_state=eyJ9%3D%3D", digest) == (
        f"http://127.0.0.1:5000/v2/a/blobs/uploads/u2?_state=eyJ9%3D%3D&digest={digest}"
    )
    # an absolute Location is used as it is
    assert bench.upload_url(host, "http://other:1/v2/a/blobs/uploads/u3", digest) == (
        f"http://other:1/v2/a/blobs/uploads/u3?digest={digest}"
    )


def test_summarize_profile_counts_self_and_inclusive_time() -> None:
    site = "/usr/lib/python3.11/site-packages"
    stdlib = "/usr/lib/python3.11"
    collapsed = "\n".join(
        [
            f'process 1:"python -m trustyard";run ({stdlib}/asyncio/runners.py:118);'
            f"read (/w/src/trustyard/app.py:10);digest ({site}/hashy/h.py:5) 6",
            f'process 1:"python -m trustyard";run ({stdlib}/asyncio/runners.py:118);'
            f"read (/w/src/trustyard/app.py:11) 3",
            f"run ({stdlib}/asyncio/runners.py:118);emit ({stdlib}/logging/__init__.py:1113) 1",
            "not a stack line",
        ]
    )
    summary = bench.summarize_profile(collapsed)
    assert summary.samples == 10
    assert summary.self_by_function[0] == ("digest (hashy/h.py)", 6)
    assert dict(summary.self_by_package) == {"hashy": 6, "trustyard": 3, "logging": 1}
    assert dict(summary.total_by_package)["trustyard"] == 9
    assert dict(summary.total_by_package)["asyncio"] == 10
    total = dict(summary.total_by_function)
    assert total["read (trustyard/app.py)"] == 9
    assert "run (asyncio/runners.py)" not in total  # scaffolding: every stack has it
    assert dict(summary.self_by_line)["read (trustyard/app.py:11)"] == 3
    assert "| 60.0 | 6 | `digest (hashy/h.py)` |" in bench.render_profile("push", summary)


def test_short_path() -> None:
    assert bench.short_path("/r/lib/python3.11/site-packages/uvicorn/main.py") == "uvicorn/main.py"
    assert bench.short_path("/work/main/src/trustyard/registry/app.py") == "trustyard/registry/app.py"
    assert bench.short_path("/r/lib/python3.11/logging/__init__.py") == "logging/__init__.py"
    assert bench.short_path("<string>") == "<string>"


def _report() -> bench.Report:
    metrics = bench.metrics_for("1 GiB", 200)
    fast = bench.RegistryRun(values={m.key: 10.0 for m in metrics})
    medium = bench.RegistryRun(values={m.key: 8.0 for m in metrics}, busy_percent=30.0, foreign_percent=12.0)
    slow = bench.RegistryRun(values={m.key: 4.0 for m in metrics})
    broken = bench.RegistryRun(values={"push_big_mbps": 3.0}, errors=["pull large: skopeo failed\ndetails"])
    runs: dict[bench.RegistryName, list[bench.RegistryRun]] = {
        "trustyard": [fast, broken, medium],
        "reference": [slow, slow, slow],
    }
    return bench.Report(
        command="python benchmarks/registry.py --out docs/benchmarks.md",
        date="2026-01-01 00:00 UTC",
        machine={"CPU": "test CPU, 2 logical cores"},
        candidate_label="trustyard",
        settings={"runs": "3 per registry"},
        rows=bench.aggregate(metrics, runs),
        runs=runs,
    )


def test_aggregate_takes_the_best_run_and_the_worst_memory() -> None:
    rows = {row.metric.key: row for row in _report().rows}
    push = rows["push_big_mbps"]
    assert (push.candidate, push.reference, push.ratio, push.met) == (10.0, 4.0, 2.5, True)
    assert rows["push_big_s"].candidate == 8.0  # lower is better
    assert rows["push_big_s"].met is None  # no target
    assert rows["pull_big_mbps"].candidate == 10.0  # the failed run has no figure
    assert rows["rss_push_big_mib"].candidate == 10.0  # memory: the worst run
    assert rows["rss_push_big_mib"].met is True  # 10 MiB < 200 MiB


def test_step_order_alternates() -> None:
    assert bench.step_order(0, 0) == ("trustyard", "reference")
    assert bench.step_order(0, 1) == bench.step_order(1, 0) == ("reference", "trustyard")


def test_foreign_cpu_is_a_share() -> None:
    assert 0.0 <= bench.ForeignCpu().percent() <= 100.0


def test_target_rules() -> None:
    assert bench.PUSH_TARGET.met(2.0, 1.0) and not bench.PUSH_TARGET.met(1.9, 1.0)
    assert bench.MEMORY_TARGET.met(199.0, 1.0) and not bench.MEMORY_TARGET.met(200.0, 1.0)
    missing = bench.Row(bench.metrics_for("1 GiB", 200)[0], None, 100.0)
    assert missing.met is False and missing.cells()[1] == "failed"


def test_render_markdown_has_table_command_machine_and_failures() -> None:
    text = bench.render_markdown(_report())
    assert "| metric | trustyard | reference | ratio | target | met |" in text
    assert "| push 1 GiB (MB/s) ↑ | 10.0 | 4.0 | 2.50× | ≥ 2× ref | yes |" in text
    assert "| ingest 1 GiB with curl (MB/s) ↑ | 10.0 | 4.0 | 2.50× | ≥ 2× ref | yes |" in text
    assert "| client (curl) CPU time, 1 GiB ingest (s) ↓ | 8.00 | 4.00 | 2.00× |  |  |" in text
    assert "only the ingest row shows the registry's ingest capacity" in text
    assert "Command: `python benchmarks/registry.py --out docs/benchmarks.md`" in text
    assert "- CPU: test CPU, 2 logical cores" in text
    assert "- trustyard run 2: `pull large: skopeo failed`" in text
    assert "| trustyard | 3 | 8.0 | 8.00 |" in text and text.rstrip().endswith("| 4 | 4.0 | 4.0 | 0 / 0 |")
    assert "| 30 / 12 |" in text
    assert "Validation run" not in text


def test_rich_table_renders() -> None:
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(bench.rich_table(_report()))
    assert "push 1 GiB (MB/s)" in console.export_text()


def test_method_describes_the_curl_ingest() -> None:
    method = bench.settings_from(bench.parse_args([])).describe(isolated_cache=True)
    ingest = method["ingest"]
    assert "-H 'Transfer-Encoding: chunked'` to the Location" in ingest
    assert "&digest=" in ingest and "wall-clock seconds of the three requests" in ingest


def test_write_section_replaces_only_the_registry_section(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    other = "## Image analysis: something else\n\nfigures\n"
    out.write_text(f"# Benchmarks\n\n{bench.REGISTRY_SECTION}\n\nold figures\n\n### Machine\n\nold\n\n{other}")
    bench.write_section(out, f"# Benchmarks\n\n{bench.REGISTRY_SECTION}\n\nnew figures\n")
    text = out.read_text()
    assert "new figures" in text and "old" not in text
    assert text.endswith(other) and text.startswith("# Benchmarks\n\n" + bench.REGISTRY_SECTION)
    fresh = tmp_path / "fresh.md"
    bench.write_section(fresh, f"# Benchmarks\n\n{bench.REGISTRY_SECTION}\n\nfigures\n")
    assert fresh.read_text() == f"# Benchmarks\n\n{bench.REGISTRY_SECTION}\n\nfigures\n"
