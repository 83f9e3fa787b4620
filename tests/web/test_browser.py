"""End to end in a real browser: Debian's chromium, driven by Playwright, against a real ``trustyard serve``.

One server (HTTPS, as the notary client requires) serves the module. A person signs in, creates a project,
an image is pushed into it with skopeo, scanned against OSV advisories imported with ``trustyard db import``,
and its findings shown; the tag is signed with the real ``notary`` client and the signed mark appears. A guest
does not see a private project, a form posted without its CSRF token is refused, and signing out ends the
session. Every main page is screenshotted to ``test-output/screenshots/`` (CI keeps the folder as an artifact).

No browser is downloaded: Playwright launches ``/usr/bin/chromium`` (``scripts/test`` installs the Debian
package); its absence fails the tests with what to install.
"""

from __future__ import annotations

import json
import re
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from interop.notary_client import client as notary_client
from interop.notary_client import running_trustyard
from interop.servers import INTEROP_ADMIN_PASSWORD, TrustyardServer
from scan.shared import OCI_ALPINE_APP, OCI_ALPINE_APP_TAG
from scan.vulndb.shared import OSV

pytestmark = pytest.mark.interop

CHROMIUM: Final = Path("/usr/bin/chromium")
CHROMIUM_ARGS: Final = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS: Final = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
ADMIN: Final = ("admin", INTEROP_ADMIN_PASSWORD)
PROJECT: Final = "webapp"
REPOSITORY: Final = f"{PROJECT}/app"
SCAN_TIMEOUT: Final = 180.0


def shoot(page: Page, name: str, *, height: int | None = None) -> Path:
    """A screenshot of what the browser shows now (the full page, or its top ``height`` pixels), kept under
    test-output/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if height is None:
        page.screenshot(path=str(path), full_page=True)
    else:
        width = page.viewport_size["width"] if page.viewport_size else 1280
        page.screenshot(path=str(path), clip={"x": 0, "y": 0, "width": width, "height": height})
    return path


def _trustyard(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "trustyard"
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "trustyard"]
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrustyardServer]:
    """``trustyard serve`` over TLS, with OSV's npm advisories imported into its vulnerability store."""
    with running_trustyard(tmp_path_factory.mktemp("web")) as srv:
        imported = _trustyard("db", "import", str(OSV / "npm" / "all.zip"), "--data-dir", str(srv.data_dir))
        assert imported.returncode == 0, imported.stderr
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless, under Playwright."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test installs it)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _api(server: TrustyardServer) -> httpx.Client:
    assert server.ca_file is not None
    verify = ssl.create_default_context(cafile=server.ca_file)
    return httpx.Client(base_url=server.url, auth=ADMIN, verify=verify, timeout=30)


def _context(browser: Browser, width: int = 1280) -> BrowserContext:
    # the server's certificate is from the test's own CA, which chromium does not know
    return browser.new_context(ignore_https_errors=True, viewport={"width": width, "height": 900})


def sign_in(page: Page, server: TrustyardServer, user: str, password: str) -> None:
    """Sign in through the form, as a person would."""
    page.goto(f"{server.url}/login")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.url}/projects")


def _push(server: TrustyardServer, tag: str, repository: str = REPOSITORY) -> str:
    """skopeo copies the Alpine fixture image into the repository; its manifest digest."""
    done = subprocess.run(
        [
            "skopeo",
            "copy",
            "--dest-creds",
            ":".join(ADMIN),
            "--dest-tls-verify=false",
            f"oci:{OCI_ALPINE_APP}:{OCI_ALPINE_APP_TAG}",
            f"docker://{server.host}/{repository}:{tag}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with _api(server) as api:
        answer = api.get(
            f"/v2/{repository}/manifests/{tag}", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}
        )
        assert answer.status_code == 200, answer.text
        return str(answer.headers["Docker-Content-Digest"])


def _wait_scanned(server: TrustyardServer, digest: str) -> dict[str, Any]:
    deadline = time.monotonic() + SCAN_TIMEOUT
    with _api(server) as api:
        while True:
            answer = api.get(f"/api/v1/repositories/{REPOSITORY}/manifests/{digest}/scan")
            state: dict[str, Any] = answer.json() if answer.status_code == 200 else {}
            if state.get("status") in ("done", "failed"):
                assert state["status"] == "done", state
                return state
            assert time.monotonic() < deadline, f"not scanned after {SCAN_TIMEOUT}s: {state or answer.text}"
            time.sleep(0.5)


def _wait_changed(server: TrustyardServer, digest: str) -> None:
    """Until the re-check's ``scan.changed`` event for ``digest`` is in the audit log."""
    deadline = time.monotonic() + SCAN_TIMEOUT
    with _api(server) as api:
        while True:
            events = api.get("/api/v1/audit", params={"action": "scan.changed", "limit": 1000}).json()["events"]
            if any(e["target"] == digest for e in events):
                return
            assert time.monotonic() < deadline, "no scan.changed event after the import"
            time.sleep(0.5)


def _sign(server: TrustyardServer, tmp_path: Path, tag: str) -> None:
    """Sign ``tag`` with the real notary client: a target named after the tag over the manifest's exact bytes."""
    with _api(server) as api:
        manifest = api.get(
            f"/v2/{REPOSITORY}/manifests/{tag}", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}
        )
    payload = tmp_path / "manifest.json"
    payload.write_bytes(manifest.content)
    notary = notary_client(server, tmp_path, "publisher")
    notary.run("init", REPOSITORY)
    notary.run("add", REPOSITORY, tag, str(payload))
    notary.run("publish", REPOSITORY)


def test_a_person_creates_a_project_pushes_sees_findings_and_the_signature(
    server: TrustyardServer, browser: Browser, tmp_path: Path
) -> None:
    context = _context(browser)
    page = context.new_page()
    problems: list[str] = []  # script errors and CSP violations would show here
    page.on(
        "console",
        lambda message: problems.append(f"{message.text} at {message.location}") if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{server.url}/dashboard")
    page.wait_for_url(re.compile(r"/login\?next="))
    assert page.evaluate("document.activeElement.id") == "username"  # the form is ready to type into
    shoot(page, "login")
    sign_in(page, server, *ADMIN)
    page.keyboard.press("Tab")  # keyboard users first reach the skip link, which takes them to the content
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    # create a private project through the form
    page.get_by_label("Name").fill(PROJECT)
    page.get_by_label("Private: members only").check()
    page.get_by_role("button", name="Create project").click()
    page.wait_for_url(f"{server.url}/projects/{PROJECT}")
    expect(page.get_by_text("No repositories yet.")).to_be_visible()

    digest = _push(server, "1")
    state = _wait_scanned(server, digest)
    assert state["vulnerabilities"] > 0

    page.goto(f"{server.url}/projects")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=PROJECT))
    expect(row).to_contain_text("private")
    expect(row.locator("td.num").nth(0)).to_have_text("1")
    shoot(page, "projects")

    # the repository: the tag, its digest, platform, pusher, a severity bar, the pull command, unsigned
    page.get_by_role("link", name=PROJECT).click()
    page.get_by_role("link", name=REPOSITORY).click()
    page.wait_for_url(f"{server.url}/repositories/{REPOSITORY}")
    tag_row = page.locator("table.tags tbody tr").first
    expect(tag_row).to_contain_text(digest[:19])
    expect(tag_row).to_contain_text("linux/amd64")
    expect(tag_row).to_contain_text("by admin")
    expect(tag_row).to_contain_text("unsigned")
    bar = tag_row.locator(".sevbar")
    expect(bar).to_have_attribute("aria-label", re.compile(r"\d+ high"))
    expect(page.locator("#pull-podman")).to_have_text(f"podman pull {server.host}/{REPOSITORY}:1")

    # the image: findings worst first with installed and fixed versions, the layer, advisory links; the SBOM
    tag_row.get_by_role("link", name="1", exact=True).click()
    page.wait_for_url(re.compile(rf"/repositories/{REPOSITORY}/-/manifests/{digest}$"))
    findings = page.locator("table.findings tbody tr")
    expect(findings.first).to_contain_text("high")
    lodash = findings.filter(has_text="lodash").first
    expect(lodash).to_contain_text("4.17.15")
    expect(lodash.get_by_role("link", name="#1")).to_have_attribute("href", "#layer-1")
    advisory = lodash.locator("a[target=_blank]").first
    expect(advisory).to_have_attribute("href", re.compile(r"^https://"))
    severities = findings.locator(".sev").all_inner_texts()
    order = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"]
    assert [order.index(s) for s in severities] == sorted(order.index(s) for s in severities)
    shoot(page, "image")
    sbom_rows = page.locator("#sbom-table tbody tr")
    total = sbom_rows.count()
    assert total > 20
    page.get_by_label("Search components").fill("lodash")
    expect(page.locator("#sbom-table tbody tr:visible")).to_have_count(1)
    download = page.get_by_role("link", name="CycloneDX 1.6 JSON")
    with page.expect_download() as fetched:
        download.click()
    bom = json.loads(Path(fetched.value.path()).read_text())
    assert bom["bomFormat"] == "CycloneDX" and len(bom["components"]) == total

    # sign the tag with the real notary client: the signed mark appears, with the signer
    _sign(server, tmp_path, "1")
    with _api(server) as api:
        verdict = api.get(f"/api/v1/repositories/{REPOSITORY}/verdict/1").json()
    assert verdict["signed"] is True, verdict
    page.goto(f"{server.url}/repositories/{REPOSITORY}")
    signed = page.locator("table.tags tbody tr").first.locator("td.signed")
    expect(signed).to_contain_text("signed")
    expect(signed).to_contain_text("by " + ", ".join(verdict["signers"]))
    shoot(page, "repository")
    shoot(page, "repository-top", height=330)  # the README's picture (docs/images/ui-repository.png)

    # operations: new advisories for the image's Python packages; the re-check shows on the dashboard
    imported = _trustyard("db", "import", str(OSV / "PyPI" / "all.zip"), "--data-dir", str(server.data_dir))
    assert imported.returncode == 0, imported.stderr
    _wait_changed(server, digest)
    page.get_by_role("link", name="Dashboard").click()
    changed = page.get_by_role("row").filter(has=page.get_by_role("link", name=digest[:19]))
    expect(changed).to_contain_text("PYSEC-")
    expect(page.locator("figure.chart svg").first).to_have_attribute("aria-label", re.compile(r"high 1\b"))
    expect(page.get_by_role("row").filter(has_text="lodash")).to_contain_text(REPOSITORY)
    shoot(page, "dashboard")
    page.get_by_role("link", name="Vulnerability data").click()
    expect(page.get_by_role("row").filter(has_text="osv")).to_contain_text("PyPI")
    shoot(page, "vulnerability-data")
    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Project").fill(PROJECT)
    page.get_by_label("Action").fill("push")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.audit tbody tr").first).to_contain_text("admin")
    expect(page.locator("table.audit tbody")).to_contain_text(REPOSITORY)
    shoot(page, "audit")

    # a robot account: its secret is shown once
    page.goto(f"{server.url}/projects/{PROJECT}/robots")
    page.get_by_label("Name", exact=True).fill("ci")
    page.get_by_label("push").check()
    page.get_by_role("button", name="Create robot").click()
    secret = page.locator("#robot-secret").inner_text()
    assert len(secret) >= 20
    shoot(page, "robot-created")
    page.goto(f"{server.url}/projects/{PROJECT}/robots")  # the page again (a reload would post the form again)
    expect(page.get_by_role("row").filter(has_text="robot$ci")).to_contain_text("active")
    assert secret not in page.content()
    page.goto(f"{server.url}/projects/{PROJECT}/settings")
    shoot(page, "project-settings")
    assert problems == [], problems
    context.close()

    # on a phone: the repository page fits the screen (wide tables scroll inside their frame)
    phone = _context(browser, width=390)
    small = phone.new_page()
    sign_in(small, server, *ADMIN)
    small.goto(f"{server.url}/repositories/{REPOSITORY}")
    assert small.evaluate("document.documentElement.scrollWidth") <= 390
    shoot(small, "repository-phone")
    phone.close()


def test_a_guest_does_not_see_a_private_project(server: TrustyardServer, browser: Browser) -> None:
    with _api(server) as api:
        assert api.post("/api/v1/projects", json={"name": "hidden"}).status_code == 201
    admin = _context(browser)
    page = admin.new_page()
    sign_in(page, server, *ADMIN)
    page.get_by_role("link", name="Users").click()
    page.get_by_label("Name").fill("visitor")
    page.get_by_label("Password").fill("visitor-password")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("row").filter(has_text="visitor")).to_contain_text("active")
    shoot(page, "users")
    admin.close()
    context = _context(browser)
    page = context.new_page()
    sign_in(page, server, "visitor", "visitor-password")
    expect(page.get_by_role("main")).not_to_contain_text("hidden")
    answer = page.goto(f"{server.url}/projects/hidden")
    assert answer is not None and answer.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    shoot(page, "guest-refused")
    context.close()


def test_an_anonymous_visitor_browses_public_projects_only(server: TrustyardServer, browser: Browser) -> None:
    """Without a session: public projects, their repositories and images, read-only; a private project (or one
    that does not exist) sends the visitor to sign in, as the API answers anonymous callers, so names leak not."""
    with _api(server) as api:
        assert api.post("/api/v1/projects", json={"name": "showcase", "public": True}).status_code == 201
        assert api.post("/api/v1/projects", json={"name": "vault"}).status_code == 201
    digest = _push(server, "1", "showcase/app")
    _push(server, "1", "vault/app")
    context = _context(browser)
    page = context.new_page()
    page.goto(f"{server.url}/projects")
    main = page.get_by_role("main")
    expect(main.get_by_role("link", name="showcase")).to_be_visible()
    expect(main).not_to_contain_text("vault")
    expect(page.get_by_role("link", name="Sign in")).to_have_attribute("href", "/login?next=%2Fprojects")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    assert page.locator("form[method=post]").count() == 0  # read-only: no create-project form
    shoot(page, "anonymous-projects")
    main.get_by_role("link", name="showcase").click()
    page.wait_for_url(f"{server.url}/projects/showcase")
    expect(page.get_by_role("link", name="Members")).to_have_count(0)
    page.get_by_role("link", name="showcase/app").click()
    page.wait_for_url(f"{server.url}/repositories/showcase/app")
    expect(page.locator("table.tags tbody tr").first).to_contain_text(digest[:19])
    expect(page.locator("#pull-podman")).to_have_text(f"podman pull {server.host}/showcase/app:1")
    page.goto(f"{server.url}/repositories/showcase/app/-/manifests/{digest}")
    expect(page.get_by_role("heading", name="Layers")).to_be_visible()
    assert page.locator("form[method=post]").count() == 0
    shoot(page, "anonymous-image")
    for hidden in (
        "/projects/vault",
        "/projects/no-such-project",
        "/repositories/vault/app",
        f"/repositories/vault/app/-/manifests/{digest}",
        "/projects/showcase/members",
        "/dashboard",
    ):
        page.goto(f"{server.url}{hidden}")
        page.wait_for_url(re.compile(r"/login\?next="))
        expect(page.get_by_role("main")).not_to_contain_text("vault")
    context.close()


def test_a_form_without_its_csrf_token_is_refused(server: TrustyardServer, browser: Browser) -> None:
    context = _context(browser)
    page = context.new_page()
    sign_in(page, server, *ADMIN)
    page.locator("form[action='/projects'] input[name=csrf]").evaluate("input => input.remove()")
    page.get_by_label("Name").fill("forged")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Create project").click()
    assert navigation.value.status == 403
    expect(page.get_by_role("heading", name="Request refused")).to_be_visible()
    shoot(page, "csrf-refused")
    with _api(server) as api:
        assert api.get("/api/v1/projects/forged").status_code == 404
    context.close()


def test_signing_out_ends_the_session(server: TrustyardServer, browser: Browser) -> None:
    context = _context(browser)
    page = context.new_page()
    sign_in(page, server, *ADMIN)
    cookies = context.cookies()
    assert [(c.get("httpOnly"), c.get("secure"), c.get("sameSite")) for c in cookies] == [(True, True, "Lax")]
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{server.url}/login")
    page.goto(f"{server.url}/dashboard")
    page.wait_for_url(re.compile(r"/login\?next=%2Fdashboard$"))
    # the signed-in cookie, replayed in a fresh browser, is refused too
    replay = _context(browser)
    replay.add_cookies(cookies)  # type: ignore[arg-type]
    other = replay.new_page()
    other.goto(f"{server.url}/dashboard")
    other.wait_for_url(re.compile(r"/login"))
    replay.close()
    context.close()


def test_chromium_is_debians(browser: Browser) -> None:
    assert shutil.which("chromium") == str(CHROMIUM)
    assert browser.version.split(".")[0].isdigit()
