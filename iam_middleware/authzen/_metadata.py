"""The PDP's metadata document (``/.well-known/authzen-configuration``): where its endpoints are.

The spec's ``policy_decision_point`` is the PDP's own https URL, which a PEP compares with the URL it fetched the
document from (a mix-up defence): it is configured, never taken from a request's ``Host``, which any client sets.
Reference: https://openid.net/specs/authorization-api-1_0.html ("Policy Decision Point Metadata").
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .._exceptions import ConfigurationError

__all__ = ["EVALUATIONS_PATH", "EVALUATION_PATH", "METADATA_PATH", "metadata", "pdp_identifier"]

#: The Access Evaluation endpoint, below where the app is mounted.
EVALUATION_PATH = "/access/v1/evaluation"
#: The Access Evaluations endpoint (several evaluations in one request).
EVALUATIONS_PATH = "/access/v1/evaluations"
#: The metadata document (RFC 8615 well-known URI registered by the spec).
METADATA_PATH = "/.well-known/authzen-configuration"


def pdp_identifier(url: str) -> str:
    """``url`` as the spec's PDP identifier (https, a host, no query or fragment; no trailing ``/``), or
    ConfigurationError."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is what rejects a bad one
    except ValueError:
        raise ConfigurationError(f"pdp_url {url!r} is not a URL") from None
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment or "?" in url or "#" in url:
        raise ConfigurationError(f"pdp_url must be an https URL without query or fragment, got {url!r}")
    return url.rstrip("/")


def metadata(identifier: str) -> dict[str, str]:
    """The metadata document of the PDP at ``identifier`` (the endpoints it answers; the search APIs it does not)."""
    return {"policy_decision_point": identifier, "access_evaluation_endpoint": identifier + EVALUATION_PATH,
            "access_evaluations_endpoint": identifier + EVALUATIONS_PATH}
