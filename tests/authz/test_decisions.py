"""Every decision path of the plugin, on messages shaped as dockerd 20.10 sends them (seen in test_dockerd.py).

Fail-closed cases are named after what they guard against; each must refuse with a message that says why.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from trustyard.authz import Authorizer, Policy, PolicyFileError, RequestError, parse_endpoint
from trustyard.authz.server import create_app
from trustyard.authz.service import ENGINE_FIELDS
from trustyard.policy import container

JSON = {"Content-Type": "application/json"}


def message(uri: str, body: Any = None, *, method: str = "POST", user: str = "", raw: bytes | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> bytes:  # fmt: skip
    """An AuthZReq message; ``body`` is JSON-encoded unless ``raw`` bytes are given."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    envelope: dict[str, Any] = {"User": user, "RequestMethod": method, "RequestUri": uri}
    hdrs = dict(JSON if headers is None else headers)
    if data is not None:
        envelope["RequestBody"] = base64.b64encode(data).decode()
        hdrs.setdefault("Content-Length", str(len(data)))
    envelope["RequestHeaders"] = hdrs
    return json.dumps({**envelope, **extra}).encode()


def create(host_config: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return {"Image": "alpine", "Cmd": ["true"], "HostConfig": host_config or {}, **fields}


@pytest.fixture
def authz() -> Authorizer:
    return Authorizer()


@pytest.mark.parametrize(
    ("uri", "path", "version"),
    [
        ("/v1.41/containers/create?name=x", "/containers/create", (1, 41)),
        ("/v1.43//containers/create?", "/containers/create", (1, 43)),
        ("/v1.41/containers%2Fcreate", "/containers/create", (1, 41)),
        ("/v1.41/x/../containers/./create/", "/containers/create", (1, 41)),
        ("//containers/create", "/containers/create", None),
        ("/_ping", "/_ping", None),
    ],
)
def test_uri_tricks_normalise_to_the_routed_endpoint(uri: str, path: str, version: tuple[int, int] | None) -> None:
    endpoint = parse_endpoint("post", uri)
    assert (endpoint.method, endpoint.path, endpoint.version) == ("POST", path, version)


@pytest.mark.parametrize(
    "uri",
    ["/v1.41/containers%252Fcreate", "/v1.4.1/containers/create", "/v9.0/containers/create", "/v1.11/info",
     "http://docker/v1.41/containers/create", "/containers/create%00", "/v1.41/containers/%ff"],
)  # fmt: skip
def test_unroutable_or_unknown_version_targets_are_refused(authz: Authorizer, uri: str) -> None:
    with pytest.raises(RequestError):
        parse_endpoint("POST", uri)
    assert not authz.request(message(uri, create())).allow


def test_privileged_create_refused_with_rule_and_title(authz: Authorizer) -> None:
    decision = authz.request(message("/v1.41/containers/create", create({"Privileged": True})))
    assert not decision.allow
    assert {"5.5", "5.4", "5.22"} <= set(decision.rules)
    assert "[5.5] runs privileged (Ensure that privileged containers are not used)" in decision.msg


def test_plain_create_allowed_hygiene_rules_only_warn(authz: Authorizer) -> None:
    decision = authz.request(message("/v1.41/containers/create?name=web", create()))
    assert decision.allow and not decision.rules
    assert {"5.11", "5.13", "5.29"} <= set(decision.warnings)


@pytest.mark.parametrize(
    ("host_config", "rule"),
    [
        ({"NetworkMode": "host"}, "5.10"),
        ({"Binds": ["/:/host"]}, "5.6"),
        ({"Binds": ["/var/run/docker.sock:/var/run/docker.sock"]}, "5.32"),
        ({"PidMode": "host"}, "5.16"),
        ({"IpcMode": "host"}, "5.17"),
        ({"UTSMode": "host"}, "5.21"),
        ({"UsernsMode": "host"}, "5.31"),
        ({"CapAdd": ["SYS_ADMIN"]}, "C.5.3.3"),
        ({"SecurityOpt": ["seccomp=unconfined"]}, "5.22"),
        ({"SecurityOpt": ["apparmor=unconfined"]}, "5.2"),
        ({"Devices": [{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda"}]}, "5.18"),
        ({"CgroupParent": "/"}, "5.25"),
        ({"Mounts": [{"Type": "bind", "Source": "/srv", "Target": "/srv", "BindOptions": {"Propagation": "rshared"}}]},
         "5.20"),
    ],
)  # fmt: skip
def test_isolation_breaking_creates_refused(authz: Authorizer, host_config: dict[str, Any], rule: str) -> None:
    decision = authz.request(message("/v1.41/containers/create", create(host_config)))
    assert not decision.allow and rule in decision.rules, decision


def test_go_case_insensitive_keys_are_judged_as_dockerd_reads_them(authz: Authorizer) -> None:
    decision = authz.request(message("/containers/create", {"image": "alpine", "hostconfig": {"PRIVILEGED": True}}))
    assert not decision.allow and "5.5" in decision.rules


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("repeated key (Go merges, Python keeps the last)",
         b'{"Image":"a","HostConfig":{"Privileged":true},"HostConfig":{"Memory":1}}'),
        ("case-colliding keys", b'{"Image":"a","HostConfig":{"Privileged":true},"hostConfig":{}}'),
        ("truncated JSON", b'{"Image":"a","HostConfig":{"Privileged":'),
        ("not an object", b'["Image"]'),
        ("NaN", b'{"Image":"a","HostConfig":{"Memory":NaN}}'),
        ("UTF-16", '{"Image":"a"}'.encode("utf-16")),
        ("wrong type", b'{"Image":"a","HostConfig":{"Binds":"/:/host"}}'),
    ],
)  # fmt: skip
def test_unreadable_create_bodies_are_refused(authz: Authorizer, name: str, raw: bytes) -> None:
    decision = authz.request(message("/v1.41/containers/create", raw=raw))
    assert not decision.allow and decision.msg.startswith("trustyard:"), name


def test_empty_body_on_create_is_refused_cve_2024_41110(authz: Authorizer) -> None:
    for msg in (
        message("/v1.41/containers/create", headers={**JSON, "Content-Length": "0"}),
        message("/v1.41/containers/create", raw=b""),
    ):
        decision = authz.request(msg)
        assert not decision.allow and "CVE-2024-41110" in decision.msg


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({**JSON, "Content-Encoding": "gzip"}, "gzip-encoded"),
        ({**JSON, "Transfer-Encoding": "chunked"}, "chunked"),
        ({"Content-Type": "application/x-tar"}, "Content-Type"),
        ({**JSON, "Content-Length": "99999"}, "Content-Length"),
    ],
)
def test_chunked_compressed_or_mismatched_bodies_are_refused(
    authz: Authorizer, headers: dict[str, str], why: str
) -> None:
    decision = authz.request(message("/v1.41/containers/create", create(), headers=headers))
    assert not decision.allow and why in decision.msg


def test_oversized_body_is_refused() -> None:
    authz = Authorizer(Policy.from_dict({"limits": {"max_body": 64}}))
    decision = authz.request(message("/v1.41/containers/create", create(Labels={"x": "y" * 100})))
    assert not decision.allow and "exceeds the limit" in decision.msg


@pytest.mark.parametrize(
    ("name", "msg"),
    [
        ("bad base64", b'{"RequestMethod":"POST","RequestUri":"/containers/create","RequestBody":"!!!"}'),
        ("unknown envelope field", message("/_ping", method="GET", Surprise=1)),
        ("truncated envelope", b'{"RequestMethod":"GET","RequestUri":"/_pi'),
        ("no method", b'{"RequestUri":"/_ping"}'),
        ("wrong envelope type", b'{"RequestMethod":"GET","RequestUri":"/_ping","ResponseStatusCode":"200"}'),
    ],
)
def test_unreadable_plugin_messages_are_refused(authz: Authorizer, name: str, msg: bytes) -> None:
    assert not authz.request(msg).allow, name
    assert not authz.response(msg).allow, name


def test_empty_plugin_message_is_refused(authz: Authorizer) -> None:
    """What dockerd re-sends after the plugin died mid-request (test_dockerd_crash.py): the message is gone."""
    for empty in (b"", b"\n"):
        decision = authz.request(empty)
        assert not decision.allow and "empty plugin message" in decision.msg
        assert not authz.response(empty).allow


def test_other_endpoints_allowed_and_responses_allowed(authz: Authorizer) -> None:
    assert authz.request(message("/v1.41/containers/json?all=1", method="GET")).allow
    assert authz.request(message("/v1.41/images/create?fromSrc=-", raw=b"tar", headers={})).allow
    assert authz.response(message("/v1.41/containers/create", create(), ResponseStatusCode=201)).allow


def test_exec_privileged_and_root_refused(authz: Authorizer) -> None:
    uri = "/v1.41/containers/abc/exec"
    assert authz.request(message(uri, {"Cmd": ["true"], "User": "app"})).allow
    assert authz.request(message(uri, {"Cmd": ["true"], "Privileged": True})).rules == ("5.23",)
    for user in ("root", "0", "root:root", "0:0"):
        assert authz.request(message(uri, {"Cmd": ["true"], "User": user})).rules == ("5.24",)
    assert not authz.request(message(uri, raw=b"")).allow


def test_update_judges_only_the_fields_it_changes() -> None:
    strict = Authorizer(Policy.from_dict({"rules": {"5.11": "deny", "5.29": "deny"}}))
    uri = "/v1.41/containers/abc/update"
    assert strict.request(message(uri, {"Memory": 0, "CpuShares": 512})).allow  # 0: unchanged
    assert strict.request(message(uri, {"PidsLimit": -1})).rules == ("5.29",)
    assert Authorizer().request(message(uri, {"CgroupParent": "/"})).rules == ("5.25",)


def test_policy_modes_exceptions_and_endpoint_denies(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        'version = 1\n[rules]\n"5.11" = "deny"\n"5.10" = "off"\n'
        '[[exception]]\nusers = ["ci"]\nrules = ["*"]\n'
        '[[deny]]\npath = "/plugins/*"\nmethods = ["post"]\nexempt_users = ["admin"]\nmessage = "ask ops"\n'
    )
    authz = Authorizer(Policy.load(path))
    uri = "/v1.41/containers/create"
    assert authz.request(message(uri, create({"NetworkMode": "host", "Memory": 1 << 20}))).allow
    assert authz.request(message(uri, create())).rules == ("5.11",)
    privileged = create({"Privileged": True, "Memory": 1 << 20})
    assert not authz.request(message(uri, privileged)).allow
    assert not authz.request(message(uri, privileged, user="")).allow  # no exception for the anonymous user
    excused = authz.request(message(uri, privileged, user="ci"))
    assert excused.allow and "5.5" in excused.excepted
    refused = authz.request(message("/v1.41/plugins/pull?remote=x", [], user="bob"))
    assert not refused.allow and "ask ops" in refused.msg
    assert authz.request(message("/v1.41/plugins/pull?remote=x", [], user="admin")).allow


@pytest.mark.parametrize(
    "text",
    ['[rules]\n"5.99" = "deny"\n', '[rules]\n"5.7" = "deny"\n', '[rules]\n"5.5" = "maybe"\n', "surprise = 1\n",
     '[[exception]]\nusers = [""]\nrules = ["5.5"]\n', '[[deny]]\npath = "plugins"\n', "version = 2\n", "[rules\n",
     # users and groups (test_identity.py)
     '[[exception]]\nrules = ["5.5"]\n', '[groups]\n"" = ["a"]\n', '[groups]\nops = [""]\n',
     '[[exception]]\ngroups = [""]\nrules = ["5.5"]\n', "[identity]\ngroups_from_ou = 1\n"],
)  # fmt: skip
def test_invalid_policies_are_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(PolicyFileError):
        Policy.load(path)


def test_internal_error_refuses(authz: Authorizer, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_args: object) -> None:
        raise KeyError("bug")

    monkeypatch.setattr(authz, "decide", boom)
    decision = authz.request(message("/_ping", method="GET"))
    assert not decision.allow and decision.err and "internal error" in decision.msg


def test_engine_fields_cover_every_field_the_policy_parser_reads() -> None:
    """Key folding must know every Engine API name ``ContainerSpec.from_create`` reads, or Go's case-insensitive
    matching could hide one from the rules."""
    seen: set[str] = set()

    def walk(model: type[Any]) -> None:
        for info in model.model_fields.values():
            seen.add(info.alias)
            for arg in (*getattr(info.annotation, "__args__", ()), info.annotation):
                for inner in (*getattr(arg, "__args__", ()), arg):
                    if isinstance(inner, type) and issubclass(inner, container._Wire):
                        walk(inner)

    walk(container._Create)
    assert seen <= ENGINE_FIELDS, seen - ENGINE_FIELDS


def test_http_edge_speaks_the_plugin_protocol() -> None:
    async def exchange() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(Authorizer()))
        async with httpx.AsyncClient(transport=transport, base_url="http://plugin") as client:
            return [
                await client.post("/Plugin.Activate"),
                await client.post(
                    "/AuthZPlugin.AuthZReq", content=message("/containers/create", create({"Privileged": True}))
                ),
                await client.post("/AuthZPlugin.AuthZRes", content=message("/_ping", method="GET")),
                await client.post("/AuthZPlugin.AuthZReq", content=b"x" * (5 << 20)),
            ]

    activate, refused, response, oversized = asyncio.run(exchange())
    assert activate.json() == {"Implements": ["authz"]}
    assert activate.headers["content-type"].startswith("application/vnd.docker.plugins.v1.2+json")
    assert refused.status_code == 200 and refused.json()["Allow"] is False and "[5.5]" in refused.json()["Msg"]
    assert response.json() == {"Allow": True, "Msg": "", "Err": ""}
    assert oversized.json()["Allow"] is False


RECORDED = Path(__file__).parents[1] / "assets/authz/dockerd-20.10"


def test_recorded_dockerd_session_decides_as_it_did() -> None:
    """The real engine's messages of one session (README there), replayed under the default policy."""
    expected = json.loads((RECORDED / "expected.json").read_text())
    authz = Authorizer()
    decided = {}
    for path in sorted(RECORDED.glob("0*.json")):
        decision = authz.request(path.read_bytes())
        decided[path.name] = {"allow": decision.allow, "rules": list(decision.rules)}
    assert decided == expected
    assert sum(not d["allow"] for d in decided.values()) == 6
