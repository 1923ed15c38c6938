"""docs/authzen.md's requests, sent as written by the PEP its directory block adds (signed with its access key) to
the demo directory, get the answers the page shows."""

from __future__ import annotations

import json
import re

import pytest

from iam_middleware import IAM
from iam_middleware.authzen import AuthZEN

from ._pdp import EXAMPLES, NOW, ROOT, ask_signed, directory

pytestmark = pytest.mark.anyio

PAGE = (ROOT / "docs" / "authzen.md").read_text()
BLOCK = re.compile(r"<!-- authzen: (?P<mark>[^>]*?) -->\n```(?:json|toml)\n(?P<code>.*?)```", re.S)
BLOCKS = [(m.group("mark"), m.group("code")) for m in BLOCK.finditer(PAGE)]
EXCHANGES = [(request[0].removeprefix("POST "), request[1], answer[1])
             for request, answer in zip(BLOCKS[1::2], BLOCKS[2::2], strict=True)]


def test_the_page_has_its_directory_block_and_request_answer_pairs() -> None:
    assert BLOCKS[0][0] == "directory"
    assert [path for path, _, _ in EXCHANGES] == ["/access/v1/evaluation", "/access/v1/evaluations"]
    assert all(mark == "answer" for mark, _ in BLOCKS[2::2])


@pytest.mark.parametrize(("path", "request_body", "answer"), EXCHANGES, ids=[path for path, _, _ in EXCHANGES])
async def test_each_request_of_the_page_gets_the_answer_shown(monkeypatch: pytest.MonkeyPatch, path: str,
                                                              request_body: str, answer: str) -> None:
    monkeypatch.setenv("GATEWAY_SECRET_KEY", "docs/gateway/secret/0123456789abcdef")
    iam = IAM.from_dict(directory(BLOCKS[0][1]), base_dir=EXAMPLES, clock=lambda: NOW)
    response = await ask_signed(AuthZEN(iam), iam, request_body.encode(), path=path, user="gateway")
    assert response.status_code == 200, response.text
    assert response.json() == json.loads(answer)
