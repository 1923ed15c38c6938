"""Cost of SigV4 verification next to botocore's signing cost, measured in the same run.

Run: ``python benchmarks/bench_sigv4.py``. A header-signed POST with a small JSON body is verified cold (signing-key
cache empty: every request is the first of its key that day) and warm (key cached), and compared with what botocore's
``SigV4Auth.add_auth`` costs to sign the same request. Target: warm verification at most 0.5x botocore's signing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import best_per_item, print_table, ratio  # noqa: E402

from iam_middleware._request import RequestView  # noqa: E402
from iam_middleware.authenticators._sigv4 import SigningCredential, SigV4Verifier  # noqa: E402
from iam_middleware.authenticators._sigv4_signer import SignedRequest, sign_request  # noqa: E402

NOW = 1_700_000_000.0
REGION, SERVICE = "us-east-1", "execute-api"
URL = "https://api.example.com/v1/items?view=full"
HEADERS = {"Content-Type": "application/json"}
BODY = b'{"name": "widget", "size": 3, "tags": ["a", "b"], "owner": "alice"}'
COLD_KEYS = 2000
BATCH = 2000


def view_of(signed: SignedRequest) -> RequestView:
    """The request the server receives for ``signed``."""
    parts = urlsplit(signed.url)
    headers = (("host", parts.netloc), *((name.lower(), value) for name, value in signed.headers.items()))
    return RequestView(
        method="POST",
        raw_path=parts.path.encode(),
        query_string=parts.query.encode(),
        headers=headers,
        scheme="https",
        body=BODY,
    )


def main() -> None:
    credentials = [SigningCredential(f"AKIABENCH{n:07d}", f"secret/{n:032d}") for n in range(COLD_KEYS)]
    directory = {credential.access_key_id: credential for credential in credentials}

    def sign(credential: SigningCredential, presign: int | None = None) -> SignedRequest:
        return sign_request(
            "POST",
            URL,
            HEADERS,
            BODY,
            credential=credential,
            region=REGION,
            service=SERVICE,
            now=NOW,
            presign_expires=presign,
        )

    def new_verifier() -> SigV4Verifier:
        return SigV4Verifier(service=SERVICE, regions=[REGION], lookup=directory.get)

    cold_views = [view_of(sign(credential)) for credential in credentials]
    warm_view = cold_views[0]
    presigned_view = view_of(sign(credentials[0], presign=300))
    warm = new_verifier()
    for view in (warm_view, presigned_view):
        warm.verify(view, now=NOW)  # the checks below time success, so make sure it is one

    botocore_request = AWSRequest(method="POST", url=URL, data=BODY, headers=dict(HEADERS))
    botocore_signer = botocore.auth.SigV4Auth(Credentials("AKIABENCH0000000", "secret"), SERVICE, REGION)

    def batch(call: Callable[[], object]) -> Callable[[], int]:
        def run() -> int:
            for _ in range(BATCH):
                call()
            return BATCH

        return run

    def cold_run() -> int:
        verifier = new_verifier()  # empty signing-key cache, and each request comes from another key
        for view in cold_views:
            verifier.verify(view, now=NOW)
        return len(cold_views)

    # All five are measured interleaved (best per item over rounds), so their ratios come from the same moments.
    figures = best_per_item(
        {
            "botocore SigV4Auth.add_auth (sign)": batch(lambda: botocore_signer.add_auth(botocore_request)),
            "verify, warm (signing key cached)": batch(lambda: warm.verify(warm_view, now=NOW)),
            "verify, cold (key derived)": cold_run,
            "verify presigned URL, warm": batch(lambda: warm.verify(presigned_view, now=NOW)),
            "sign_request (this package's signer)": batch(lambda: sign(credentials[0])),
        },
        rounds=15,
    )
    botocore_sign = figures["botocore SigV4Auth.add_auth (sign)"]
    print(f"SigV4, header-signed POST with a {len(BODY)}-byte body; best of 15 interleaved rounds of {BATCH}")
    rows = [(name, f"{seconds * 1e6:.1f}", ratio(seconds, botocore_sign)) for name, seconds in figures.items()]
    print_table(("operation", "us/request", "vs botocore signing"), rows)
    warm_ratio = figures["verify, warm (signing key cached)"] / botocore_sign
    verdict = "met" if warm_ratio <= 0.5 else "NOT met"
    print(f"target: warm verification <= 0.50x botocore signing: {warm_ratio:.2f}x, {verdict}")


if __name__ == "__main__":
    main()
