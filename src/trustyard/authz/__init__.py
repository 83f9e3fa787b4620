"""``trustyard authz``: a Docker authorization plugin that refuses unsafe containers and fails closed.

``wire`` parses the engine's messages, ``endpoint`` normalises request targets, ``identity`` says who is
asking (TLS client certificate, groups), ``policy`` loads what to enforce, ``images`` and ``verdicts`` judge
images with the registry's signatures and scans, ``service.Authorizer`` decides, ``server`` is the HTTP edge
on a unix socket.
"""

from trustyard.authz.endpoint import Endpoint, parse_endpoint
from trustyard.authz.errors import AuthzError, PolicyFileError, RequestError
from trustyard.authz.identity import Principal, identify
from trustyard.authz.images import IMAGE_RULES, ImageName, ImageRules, parse_image
from trustyard.authz.policy import DEFAULT_MODES, RULE_TITLES, EndpointDeny, Mode, Policy, RuleException
from trustyard.authz.service import AUDIT_LOGGER, Authorizer
from trustyard.authz.verdicts import ImageVerdict, TrustyardLink, VerdictSource, VerdictUnavailableError
from trustyard.authz.wire import Decision, EngineRequest, parse_message

__all__ = [
    "AUDIT_LOGGER",
    "DEFAULT_MODES",
    "IMAGE_RULES",
    "RULE_TITLES",
    "Authorizer",
    "AuthzError",
    "Decision",
    "Endpoint",
    "EndpointDeny",
    "EngineRequest",
    "ImageName",
    "ImageRules",
    "ImageVerdict",
    "Mode",
    "Policy",
    "PolicyFileError",
    "Principal",
    "RequestError",
    "RuleException",
    "TrustyardLink",
    "VerdictSource",
    "VerdictUnavailableError",
    "identify",
    "parse_endpoint",
    "parse_image",
    "parse_message",
]
