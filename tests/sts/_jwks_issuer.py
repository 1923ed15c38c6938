"""A token service alone, for a uvicorn subprocess (``--factory sts._jwks_issuer:app``): the directory comes as JSON
in ``IAM_TEST_DIRECTORY``, files resolve against examples/ (no tests here)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount

from iam_middleware._iam import IAM
from iam_middleware.sts import token_service

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def app() -> Starlette:
    iam = IAM.from_dict(json.loads(os.environ["IAM_TEST_DIRECTORY"]), base_dir=EXAMPLES)
    return Starlette(routes=[Mount("/sts", app=token_service(iam))])
