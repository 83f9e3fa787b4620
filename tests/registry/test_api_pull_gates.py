"""The registry's door for project pull policies (``registry/gates.py``): when gates are asked, what a refusal
looks like to a client, and what it leaves in the audit log.

The gates themselves (content trust in ``trust/gate.py``, findings in ``scan/gate.py``) have their own tests
with real signatures and real scans; here one small gate that refuses chosen digests stands for them, because
what is under test is the registry's side of the contract: a policy that demands nothing costs nothing, a
demanding one is asked on every manifest GET (never on HEAD), and the first refusal is the OCI ``DENIED``
error with the gate's message and detail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from trustyard.auth.audit import AuditQuery
from trustyard.auth.model import ProjectPolicy
from trustyard.registry import gates as gates_module
from trustyard.registry.gates import GateContext, Pull, Refusal, build_gates, first_refusal, register

from .conftest import RegistryClient, assert_error, make_image

pytestmark = pytest.mark.anyio


@dataclass
class RefuseDigests:
    """Refuses the digests in ``refused`` when the policy demands content trust; records what it was asked."""

    refused: set[str] = field(default_factory=set)
    asked: list[Pull] = field(default_factory=list)
    name: str = "test"

    def applies(self, policy: ProjectPolicy) -> bool:
        return policy.content_trust

    def check(self, pull: Pull) -> Refusal | None:
        self.asked.append(pull)
        if pull.digest in self.refused:
            return Refusal(self.name, f"{pull.repository}@{pull.digest} is not signed", {"digest": pull.digest})
        return None


async def test_gates_are_asked_only_when_the_project_demands_something(client: RegistryClient) -> None:
    gate = RefuseDigests()
    client.app.state.pull_gates = (gate,)
    image = make_image("gated")
    await client.push("lab/app", image, "v1")
    store = client.app.state.access.store
    if store.get_project("lab") is None:
        store.create_project("lab")

    assert (await client.get_manifest("lab/app", "v1")).status_code == 200
    assert gate.asked == []  # no demand: the hot path never reaches a gate

    store.set_project_policy("lab", ProjectPolicy(content_trust=True))
    assert (await client.get_manifest("lab/app", "v1")).status_code == 200
    assert [(p.repository, p.reference, p.digest) for p in gate.asked] == [("lab/app", "v1", image.digest)]

    gate.refused.add(image.digest)
    refused = await client.get_manifest("lab/app", "v1")
    detail = assert_error(refused, 403, "DENIED")
    assert detail == {"gate": "test", "digest": image.digest}
    assert refused.json()["errors"][0]["message"] == f"lab/app@{image.digest} is not signed"
    assert_error(await client.get_manifest("lab/app", image.digest), 403, "DENIED")
    # HEAD only resolves a tag (what a signer needs); it carries no content and is never gated
    head = await client.http.head("/v2/lab/app/manifests/v1")
    assert head.status_code == 200 and head.headers["docker-content-digest"] == image.digest

    audit = client.app.state.access.audit
    audit.flush()
    denied = [e for e in audit.query(AuditQuery(repository="lab/app")) if e.result == "denied"]
    assert [(e.action, e.target, e.detail["gate"]) for e in denied] == [
        ("pull", "v1", "test"),
        ("pull", image.digest, "test"),
    ]

    store.set_project_policy("lab", ProjectPolicy())
    assert (await client.get_manifest("lab/app", "v1")).status_code == 200


def test_first_refusal_asks_gates_in_order_and_stops_at_the_first_no() -> None:
    first, second = RefuseDigests(name="first"), RefuseDigests(name="second")
    second.refused.add("sha256:" + "a" * 64)
    pull = Pull("lab/app", "v1", "sha256:" + "a" * 64, "application/json", ProjectPolicy(content_trust=True), "")
    refusal = first_refusal((first, second), pull)
    assert refusal is not None and refusal.gate == "second"
    first.refused.add(pull.digest)
    refusal = first_refusal((first, second), pull)
    assert refusal is not None and refusal.gate == "first" and len(second.asked) == 1
    assert first_refusal((first, second), Pull("lab/app", "v1", pull.digest, "x", ProjectPolicy(), "")) is None


async def test_registered_gates_are_built_for_every_app(client: RegistryClient) -> None:
    built: list[GateContext] = []

    @register("test-registered")
    def make(context: GateContext) -> RefuseDigests:
        built.append(context)
        return RefuseDigests(name="test-registered")

    try:
        gates = build_gates(GateContext(client.settings, client.app.state.registry, client.app.state.access), ())
    finally:
        gates_module._FACTORIES.pop("test-registered")
    assert [g.name for g in gates][-1] == "test-registered"
    assert built[0].settings is client.settings
