"""IAM's own API over HTTP for the live directory (``pip install 'iam-middleware[sql]'``): the real
``boto3.client("iam", endpoint_url=...)`` and ``aws iam ... --endpoint-url`` manage the users, keys, groups, roles
and policies of a running service. Mount it at a path of your choosing::

    reloader = SQLDirectoryReloader.open(SQLDirectory("sqlite:///iam.db"))
    app = Starlette(routes=[Mount("/iam", app=iam_api(reloader)), ...])

(FastAPI: ``app.mount("/iam", iam_api(reloader))``.) Each call is signed with SigV4 for the signing name ``iam``,
authorized as ``iam:<Action>`` on the directory's own ARNs by the policy engine, and each write goes through
``SQLDirectory.change()``: validated whole, committed, in force at once. docs/iam-api.md tells the whole story.
"""

from __future__ import annotations

from ._actions import ACTIONS, Action
from ._app import IAMAPI, iam_api
from ._call import Call
from ._handle import NAMESPACE, SIGNING_NAME, VERSION, IAMService

__all__ = [
    "ACTIONS",
    "IAMAPI",
    "NAMESPACE",
    "SIGNING_NAME",
    "VERSION",
    "Action",
    "Call",
    "IAMService",
    "iam_api",
]
