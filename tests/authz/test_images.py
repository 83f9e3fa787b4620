"""Image rules on recorded create and pull requests: registries, signatures, findings, trustyard unavailable.

Verdicts come from ``Answers``, an in-memory ``VerdictSource`` (our own seam) holding verdicts shaped as the
management API's contract; the HTTP client is exercised against real sockets here (refused connection, a
listener that never answers) and against a real ``trustyard serve`` in test_dockerd_images.py.
"""

from __future__ import annotations

import json
import socket
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fixtures.processes import free_port
from trustyard.authz import Authorizer, Policy, RequestError
from trustyard.authz.images import ImageName, parse_image
from trustyard.authz.verdicts import (
    CachedVerdicts,
    ImageVerdict,
    TrustyardVerdicts,
    VerdictUnavailableError,
)
from trustyard.cli import main

from .test_decisions import create, message

HOST = "registry.example:5000"
RECORDED = Path(__file__).parents[1] / "assets/authz/verdicts"
CREATE = "/v1.41/containers/create"


class Answers:
    """Verdicts by (repository, reference); ``down`` makes every question fail as an unreachable trustyard would."""

    def __init__(self, **verdicts: dict[str, Any]) -> None:
        self.verdicts = {
            tuple(key.split("@")): ImageVerdict.model_validate({"repository": key.split("@")[0],
                                                               "reference": key.split("@")[1], **v})
            for key, v in verdicts.items()
        }  # fmt: skip
        self.asked: list[tuple[str, str]] = []
        self.down = False

    def verdict(self, repository: str, reference: str) -> ImageVerdict | None:
        self.asked.append((repository, reference))
        if self.down:
            raise VerdictUnavailableError("connection refused")
        return self.verdicts.get((repository, reference))


SIGNED_CLEAN = {"digest": "sha256:" + "a" * 64, "signed": True, "scan": {"status": "done", "worst": "medium",
                "counts": {"medium": 2}}}  # fmt: skip
UNSIGNED_HIGH = {"signed": False, "scan": {"status": "done", "worst": "high", "counts": {"high": 3, "low": 1}}}
QUEUED = {"signed": True, "scan": {"status": "queued", "worst": None, "counts": {}}}


def policy(images: str, trustyard: str = f'url = "http://{HOST}"') -> Policy:
    return Policy.from_dict(tomllib.loads(f"[images]\n{images}\n[trustyard]\n{trustyard}\n"), source="test")


def run(authz: Authorizer, image: str, user: str = "") -> Any:
    return authz.request(message(CREATE, create(Image=image), user=user))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alpine", ImageName("docker.io", "library/alpine", "latest")),
        ("alpine:3.20", ImageName("docker.io", "library/alpine", "3.20")),
        ("user/app", ImageName("docker.io", "user/app", "latest")),
        ("index.docker.io/library/alpine:1", ImageName("docker.io", "library/alpine", "1")),
        ("localhost/app:2", ImageName("localhost", "app", "2")),
        ("Registry/app", ImageName("Registry", "app", "latest")),  # upper case: a host, as the engine reads it
        (f"{HOST}/team/app:1", ImageName(HOST, "team/app", "1")),
        (f"{HOST}/app:1@sha256:{'b' * 64}", ImageName(HOST, "app", "sha256:" + "b" * 64)),
    ],
)
def test_names_are_read_as_the_engine_reads_them(text: str, expected: ImageName) -> None:
    assert parse_image(text) == expected


@pytest.mark.parametrize("text", ["", "a" * 64, "sha256:" + "c" * 64, "Team/../x", "x:bad tag", "x@sha256"])
def test_unjudgeable_names_are_refused(text: str) -> None:
    with pytest.raises(RequestError):
        parse_image(text)


def test_registry_rule_names_the_image_its_registry_and_the_allowed_ones() -> None:
    authz = Authorizer(policy(f'allowed_registries = ["{HOST}"]', ""))
    assert run(authz, f"{HOST}/team/app:1").allow
    refused = run(authz, "alpine")
    assert not refused.allow and refused.rules == ("image.registry",)
    assert "docker.io/library/alpine:latest comes from docker.io, which is not an allowed registry" in refused.msg
    assert HOST in refused.msg
    assert not run(authz, "sha256:" + "c" * 64).allow  # an image ID names no registry


def test_no_image_rules_means_no_question() -> None:
    answers = Answers()
    assert Authorizer(Policy(), verdicts=answers).request(message(CREATE, create(Image="a" * 64))).allow
    assert answers.asked == []


def test_signed_and_severity_rules() -> None:
    answers = Answers(**{"team/good@1": SIGNED_CLEAN, "team/bad@1": UNSIGNED_HIGH, "team/new@1": QUEUED})
    authz = Authorizer(policy('require_signed = true\nmax_severity = "high"'), verdicts=answers)
    assert run(authz, f"{HOST}/team/good:1").allow
    bad = run(authz, f"{HOST}/team/bad:1")
    assert not bad.allow and bad.rules == ("image.signed", "image.severity")
    assert "is not signed in trustyard" in bad.msg and "findings of severity high" in bad.msg and "3 high" in bad.msg
    queued = run(authz, f"{HOST}/team/new:1")
    assert not queued.allow and "has no finished scan (scan: queued)" in queued.msg
    missing = run(authz, f"{HOST}/team/none:1")
    assert not missing.allow and "trustyard has no image" in missing.msg
    elsewhere = run(authz, "quay.io/team/good:1")
    assert not elsewhere.allow and "not on trustyard's registry" in elsewhere.msg
    assert answers.asked == [("team/good", "1"), ("team/bad", "1"), ("team/new", "1"), ("team/none", "1")]


def test_unscanned_allow_and_exceptions_by_user() -> None:
    answers = Answers(**{"team/new@1": QUEUED, "team/bad@1": UNSIGNED_HIGH})
    text = 'max_severity = "critical"\nunscanned = "allow"\n'
    authz = Authorizer(policy(text), verdicts=answers)
    assert run(authz, f"{HOST}/team/new:1").allow
    assert run(authz, f"{HOST}/team/bad:1").allow  # high is below critical
    strict = Policy.from_dict(
        tomllib.loads(
            f'[images]\nrequire_signed = true\n[trustyard]\nurl = "http://{HOST}"\n'
            '[[exception]]\nusers = ["release"]\nrules = ["image.signed"]\n'
        )
    )
    authz = Authorizer(strict, verdicts=answers)
    assert not run(authz, f"{HOST}/team/bad:1").allow
    excused = run(authz, f"{HOST}/team/bad:1", user="release")
    assert excused.allow and excused.excepted == ("image.signed",)


def test_trustyard_unavailable_refuses_by_default_and_allows_per_rule() -> None:
    answers = Answers(**{"team/good@1": SIGNED_CLEAN})
    answers.down = True
    refusing = Authorizer(policy('require_signed = true\nmax_severity = "high"'), verdicts=answers)
    refused = run(refusing, f"{HOST}/team/good:1")
    assert not refused.allow and "trustyard could not be asked" in refused.msg
    assert refused.rules == ("image.signed", "image.severity")
    mixed = Authorizer(
        policy('require_signed = true\nmax_severity = "high"\non_unavailable = {"image.severity" = "allow"}'),
        verdicts=answers,
    )
    half = run(mixed, f"{HOST}/team/good:1")
    assert not half.allow and half.rules == ("image.signed",)
    allowing = Authorizer(policy('require_signed = true\non_unavailable = "allow"'), verdicts=answers)
    allowed = run(allowing, f"{HOST}/team/good:1")
    assert allowed.allow and any("allowed while trustyard is unavailable" in w for w in allowed.warnings)


def test_pull_is_judged_from_the_query() -> None:
    answers = Answers(**{"team/good@1": SIGNED_CLEAN})
    authz = Authorizer(policy(f'allowed_registries = ["{HOST}"]\nrequire_signed = true'), verdicts=answers)
    pull = "/v1.41/images/create?fromImage={}&tag={}"
    assert authz.request(message(pull.format(f"{HOST}/team/good", "1"), method="POST", headers={})).allow
    refused = authz.request(message(pull.format("alpine", "3.20"), method="POST", headers={}))
    assert not refused.allow and "docker.io/library/alpine:3.20" in refused.msg
    every_tag = authz.request(message(pull.format(f"{HOST}/team/good", ""), method="POST", headers={}))
    assert not every_tag.allow and "pull one tag or digest" in every_tag.msg
    imported = authz.request(message("/v1.41/images/create?fromSrc=-&repo=x", method="POST", headers={}))
    assert imported.allow  # an import names no registry; the create that runs it is judged


def recorded(name: str) -> dict[str, Any]:
    """A verdict as a real ``trustyard serve`` answered it (test_dockerd_pull_gates.py checks the recording)."""
    found: dict[str, Any] = json.loads((RECORDED / f"{name}.json").read_text())
    return found


def test_pull_gate_rule_quotes_the_registrys_refusal() -> None:
    blocked, open_, trust = recorded("vuln-block-high"), recorded("plain-open"), recorded("plain-content-trust")
    unversioned = {k: v for k, v in open_.items() if k not in ("pull_allowed", "refusal")}  # an older trustyard
    answers = Answers(**{"library/vuln@1": blocked, "library/plain@1": open_, "library/trust@1": trust,
                         "library/old@1": unversioned})  # fmt: skip
    authz = Authorizer(policy("require_pull_allowed = true"), verdicts=answers)
    assert run(authz, f"{HOST}/library/plain:1").allow
    refused = run(authz, f"{HOST}/library/vuln:1")
    assert not refused.allow and refused.rules == ("image.pull",)
    assert f"[image.pull] trustyard's registry refuses pulls of {HOST}/library/vuln:1: {blocked['refusal']}" in (
        refused.msg
    )
    assert "(Images are ones the registry's pull gates let be pulled)" in refused.msg
    assert trust["refusal"] in run(authz, f"{HOST}/library/trust:1").msg
    old = run(authz, f"{HOST}/library/old:1")
    assert not old.allow and "does not say whether it may be pulled" in old.msg
    missing = run(authz, f"{HOST}/library/none:1")
    assert not missing.allow and f"trustyard has no image {HOST}/library/none:1" in missing.msg
    elsewhere = run(authz, "alpine")
    assert not elsewhere.allow and "not on trustyard's registry" in elsewhere.msg
    pull = message(f"/v1.41/images/create?fromImage={HOST}/library/vuln&tag=1", method="POST", headers={})
    assert authz.request(pull).rules == ("image.pull",)
    only_signed = Authorizer(policy("require_signed = true"), verdicts=answers)
    assert run(only_signed, f"{HOST}/library/vuln:1").rules == ("image.signed",)  # the rule is off unless set


def test_pull_gate_rule_when_trustyard_is_unavailable() -> None:
    answers = Answers()
    answers.down = True
    refusing = Authorizer(policy("require_pull_allowed = true"), verdicts=answers)
    refused = run(refusing, f"{HOST}/library/vuln:1")
    assert not refused.allow and refused.rules == ("image.pull",) and "trustyard could not be asked" in refused.msg
    text = 'require_pull_allowed = true\nrequire_signed = true\non_unavailable = {"image.pull" = "allow"}'
    half = run(Authorizer(policy(text), verdicts=answers), f"{HOST}/library/vuln:1")
    assert not half.allow and half.rules == ("image.signed",)
    assert any(w.startswith("image.pull: allowed while trustyard is unavailable") for w in half.warnings)


@pytest.mark.parametrize(
    "images",
    ['max_severity = "severe"', 'unscanned = "maybe"', 'allowed_registries = ["docker.io/library"]',
     'on_unavailable = {"image.registry" = "allow"}', "require_signed = 1", 'require_pull_allowed = "yes"'],
)  # fmt: skip
def test_invalid_image_policies_are_errors(images: str) -> None:
    from trustyard.authz import PolicyFileError

    with pytest.raises(PolicyFileError):
        policy(images)


def test_cache_keeps_finished_verdicts_for_the_ttl_only() -> None:
    answers = Answers(**{"team/good@1": SIGNED_CLEAN, "team/new@1": QUEUED})
    now = [100.0]
    cache = CachedVerdicts(answers, ttl=30, clock=lambda: now[0])
    for _ in range(3):
        cache.verdict("team/good", "1")
        cache.verdict("team/new", "1")
        cache.verdict("team/none", "1")
    assert answers.asked.count(("team/good", "1")) == 1
    assert answers.asked.count(("team/new", "1")) == 3  # a scan still queued is asked again
    assert answers.asked.count(("team/none", "1")) == 3  # so is an image not pushed yet
    now[0] += 31
    cache.verdict("team/good", "1")
    assert answers.asked.count(("team/good", "1")) == 2
    answers.down = True
    with pytest.raises(VerdictUnavailableError):
        cache.verdict("team/other", "1")


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A socket that accepts connections (the kernel's backlog) but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_client_unreachable_and_timeout_are_unavailable(silent_listener: int) -> None:
    refused = TrustyardVerdicts(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(VerdictUnavailableError, match="unreachable: ConnectError"):
        refused.verdict("team/app", "1")
    silent = TrustyardVerdicts(f"http://127.0.0.1:{silent_listener}", timeout=0.5)
    with pytest.raises(VerdictUnavailableError, match="ReadTimeout"):
        silent.verdict("team/app", "1")
    refused.close()
    silent.close()


def test_check_summarises_the_pull_gate_rule(tmp_path: Path) -> None:
    file = tmp_path / "policy.toml"
    file.write_text(f'[images]\nrequire_pull_allowed = true\n[trustyard]\nurl = "http://{HOST}"\n')
    result = CliRunner().invoke(main, ["authz", "check", "--policy", str(file)])
    assert result.exit_code == 0, result.output
    assert "images the registry's pull gates refuse are refused" in result.output
    assert "unavailable: image.pull refuse" in result.output
    assert any(line.strip().startswith("deny:") and "image.pull" in line for line in result.output.splitlines())
