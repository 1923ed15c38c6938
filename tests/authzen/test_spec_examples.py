"""The examples of the AuthZEN Authorization API 1.0 text, sent as written, get answers of the spec's shapes (and, where
the spec shows an answer, that answer's decisions). The subject alice@example.com is a user of the test directory
who may ``can_read`` the spec's account 123, todo 1 and documents, and ``read`` documents 1 and 3 only.
Reference: https://openid.net/specs/authorization-api-1_0.html, sections "Access Evaluation API", "Access
Evaluations API", "Transport" (HTTPS JSON binding) and "Policy Decision Point Metadata".
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from iam_middleware import IAM
from iam_middleware.authzen import EVALUATIONS_PATH, METADATA_PATH, AuthZEN

from ._pdp import ask, client, decisions, make_iam

pytestmark = pytest.mark.anyio

ALICE_AT = {"type": "user", "id": "alice@example.com"}
# "Access Evaluation API", example request.
EVALUATION = {"subject": ALICE_AT, "resource": {"type": "account", "id": "123"},
              "action": {"name": "can_read", "properties": {"method": "GET"}},
              "context": {"time": "1985-10-26T01:22-07:00"}}
# "Transport", example of an HTTPS Access Evaluation request.
HTTPS_EVALUATION = {"subject": ALICE_AT, "resource": {"type": "todo", "id": "1"}, "action": {"name": "can_read"},
                    "context": {"time": "1985-10-26T01:22-07:00"}}
SPEC_REQUEST_ID = "bfe9eb29-ab87-4ca3-be83-a1d5d8305716"


def document(name: str) -> dict[str, Any]:
    return {"resource": {"type": "document", "id": name}}


CONTEXT = {"time": "2024-05-31T15:22-07:00"}
READ = {"name": "can_read"}
# "Access Evaluations API": three requests without defaults; with a default subject and context; with a default
# action that the third overrides.
WITHOUT_DEFAULTS = {"evaluations": [{"subject": ALICE_AT, "action": READ, **document(name), "context": CONTEXT}
                                    for name in ("boxcarring.md", "subject-search.md", "resource-search.md")]}
WITH_DEFAULTS = {"subject": ALICE_AT, "context": CONTEXT, "evaluations": [
    {"action": READ, **document(name)} for name in ("boxcarring.md", "subject-search.md", "resource-search.md")]}
OVERRIDDEN = {"subject": ALICE_AT, "context": CONTEXT, "action": READ, "evaluations": [
    document("boxcarring.md"), document("subject-search.md"),
    {"action": {"name": "can_edit"}, **document("resource-search.md")}]}


def semantic(name: str) -> dict[str, Any]:
    """"Evaluations semantics": read documents 1, 2 and 3 under one semantic."""
    return {"subject": ALICE_AT, "action": {"name": "read"}, "options": {"evaluations_semantic": name},
            "evaluations": [document("1"), document("2"), document("3")]}


@pytest.fixture(scope="module")
def iam() -> IAM:
    return make_iam()


@pytest.fixture(scope="module")
def app(iam: IAM) -> AuthZEN:
    return AuthZEN(iam, pdp_url="https://pdp.example")


def assert_decision_shape(item: Any) -> None:
    """The spec's Decision object (its evaluation-response schema): a boolean ``decision``, an optional object
    ``context``, nothing null."""
    assert isinstance(item, dict) and isinstance(item["decision"], bool)
    assert set(item) <= {"decision", "context"}
    assert isinstance(item.get("context", {}), dict)
    assert None not in item.values()


def assert_spec_answer(response: httpx.Response, *, boxed: bool) -> None:
    """A successful answer of the HTTPS binding: 200, application/json, the spec's response structure."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    if boxed:
        assert set(body) == {"evaluations"} and body["evaluations"]
        for item in body["evaluations"]:
            assert_decision_shape(item)
    else:
        assert_decision_shape(body)


async def test_the_access_evaluation_example_is_decided(app: AuthZEN, iam: IAM) -> None:
    response = await ask(app, iam, EVALUATION)
    assert_spec_answer(response, boxed=False)
    assert response.json() == {"decision": True}


async def test_the_https_example_answers_as_the_spec_shows_with_its_request_id(app: AuthZEN, iam: IAM) -> None:
    response = await ask(app, iam, HTTPS_EVALUATION, headers={"X-Request-ID": SPEC_REQUEST_ID})
    assert_spec_answer(response, boxed=False)
    assert response.json() == {"decision": True}
    assert response.headers["x-request-id"] == SPEC_REQUEST_ID


@pytest.mark.parametrize(("body", "expected"), [
    (WITHOUT_DEFAULTS, [True, True, True]),
    (WITH_DEFAULTS, [True, True, True]),
    (OVERRIDDEN, [True, True, False]),  # can_edit is not allowed
])
async def test_the_evaluations_examples_apply_defaults(app: AuthZEN, iam: IAM, body: dict[str, Any],
                                                       expected: list[bool]) -> None:
    response = await ask(app, iam, body, path=EVALUATIONS_PATH)
    assert_spec_answer(response, boxed=True)
    assert decisions(response) == expected


@pytest.mark.parametrize(("name", "expected"), [
    ("execute_all", [True, False, True]),
    ("deny_on_first_deny", [True, False]),
    ("permit_on_first_permit", [True]),
])
async def test_the_semantics_examples_answer_as_the_spec_shows(app: AuthZEN, iam: IAM, name: str,
                                                               expected: list[bool]) -> None:
    response = await ask(app, iam, semantic(name), path=EVALUATIONS_PATH)
    assert_spec_answer(response, boxed=True)
    assert decisions(response) == expected


async def test_an_evaluations_request_without_items_is_one_evaluation(app: AuthZEN, iam: IAM) -> None:
    for items in ({}, {"evaluations": []}):
        response = await ask(app, iam, {**EVALUATION, **items}, path=EVALUATIONS_PATH)
        assert_spec_answer(response, boxed=False)
        assert response.json() == {"decision": True}


async def test_the_options_example_names_no_action_and_is_a_bad_request(app: AuthZEN, iam: IAM) -> None:
    # "Evaluations options": shown "for the sake of completeness", its item has no action (and a subject of type
    # "doc"); a required member left out is a 400 ("JSON Serialization").
    body = {"evaluations": [{"resource": {"type": "doc", "id": "1"}, "subject": {"type": "doc", "id": "2"}}],
            "options": {"evaluations_semantic": "execute_all", "another_option": "value"}}
    response = await ask(app, iam, body, path=EVALUATIONS_PATH)
    assert response.status_code == 400
    assert response.json()["message"] == "evaluations[0].action is required, in the item or at the top level."


async def test_the_metadata_document_names_the_endpoints(app: AuthZEN) -> None:
    async with client(app) as pdp:
        response = await pdp.get(METADATA_PATH)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json() == {"policy_decision_point": "https://pdp.example",
                               "access_evaluation_endpoint": "https://pdp.example/access/v1/evaluation",
                               "access_evaluations_endpoint": "https://pdp.example/access/v1/evaluations"}
