"""Rules over container configurations, shared by the bench, the authorization plugin and the registry.

``ContainerSpec`` is the one typed view of a container (parsed from ``docker inspect`` or from a
``/containers/create`` body); ``RULES`` are the CIS Docker Benchmark section 5 rules over it.
"""

from trustyard.policy.container import ContainerSpec, Mount, PolicyError, PortBinding
from trustyard.policy.rules import RULES, RULES_BY_ID, ContainerRule, Verdict, evaluate

__all__ = [
    "RULES",
    "RULES_BY_ID",
    "ContainerRule",
    "ContainerSpec",
    "Mount",
    "PolicyError",
    "PortBinding",
    "Verdict",
    "evaluate",
]
