"""The backend switch of the test suite (tests/_directory_backend.py) does what it says: under
``IAM_TEST_DIRECTORY=sqlite|postgresql`` the directory-dependent tests really decide on a database's directory."""

from __future__ import annotations

from pathlib import Path

from _directory_backend import SERVED_FROM

from iam_middleware import IAM
from iam_middleware.testing import principal_for

DEMO = Path(__file__).resolve().parent.parent / "examples" / "iam.toml"


def test_the_directory_comes_from_the_backend_in_force(directory_backend: str) -> None:
    iam = IAM.from_file(DEMO)
    served_from = SERVED_FROM.get(id(iam))
    if directory_backend == "file":
        assert served_from is None
    else:
        assert served_from is not None and served_from.startswith(directory_backend)
    # Whatever serves it, it is the demo's directory, deciding as the file says.
    alice = principal_for(iam, "alice")
    assert iam.authorize(alice, "orders:GetOrder", "arn:app:orders::111122223333:order/42").allowed
    assert not iam.authorize(alice, "orders:PurgeOrders", "arn:app:orders::111122223333:order/42").allowed
