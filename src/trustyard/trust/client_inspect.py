"""What ``trustyard trust inspect`` reports: the signed tags, signers and administrative keys of a repository,
in the JSON shape of ``docker trust inspect`` (docker/cli ``cli/command/trust/inspect.go``), so scripts written
for Docker read it unchanged.

Docker's conventions are kept: a tag's signers are the delegations ``targets/<name>`` that sign its digest,
named ``<name>``, or "Repo Admin" when only the repository's own roles (``targets`` and ``targets/releases``,
which ``docker trust sign`` fills for every signer) do; ``targets/releases`` is not listed among the signers;
digests are hex without ``sha256:``; "Root" and "Repository" are the root and targets keys.

Not here: fetching or verifying (the chain given is already verified).
"""

from __future__ import annotations

from typing import Any, Final

from trustyard.trust.client_chain import TrustedChain

__all__ = ["inspect_report"]

REPO_ADMIN: Final = "Repo Admin"
_RELEASED: Final = frozenset({"targets", "targets/releases"})


def inspect_report(chain: TrustedChain, name: str, tag: str | None) -> dict[str, Any]:
    """One element of ``docker trust inspect``'s list for the repository (only ``tag`` when given)."""
    grouped: dict[tuple[str, str], set[str]] = {}
    for target in chain.signed_targets():
        if tag is not None and target.name != tag:
            continue
        names = grouped.setdefault((target.name, target.sha256 or ""), set())
        if target.role not in _RELEASED:
            names.add(target.role.removeprefix("targets/"))
    signed_tags = [
        {"SignedTag": t, "Digest": d, "Signers": sorted(names) or [REPO_ADMIN]}
        for (t, d), names in sorted(grouped.items())
    ]
    signers = [
        {"Name": role.name.removeprefix("targets/"), "Keys": [{"ID": k} for k in sorted(role.keyids)]}
        for role in sorted(chain.delegated_roles("targets"), key=lambda r: r.name)
        if role.name != "targets/releases"
    ]
    root = chain.root
    admin: list[dict[str, Any]] = []
    if root is not None:
        admin = [
            {"Name": "Root", "Keys": [{"ID": k} for k in sorted(root.body.roles["root"].keyids)]},
            {"Name": "Repository", "Keys": [{"ID": k} for k in sorted(root.body.roles["targets"].keyids)]},
        ]
    return {"Name": name, "SignedTags": signed_tags, "Signers": signers, "AdministrativeKeys": admin}
