"""Who may ask, and what is not a question: a PEP without a credential (401), without permission on the subject
(403, whoever the subject is, so no PEP learns who exists), bodies that are not the spec's request (400, 413, 415,
naming the member at fault), other paths and methods (404, 405). Every refusal is the gate's JSON refusal."""

from __future__ import annotations

import json
from typing import Any

import pytest

from iam_middleware import IAM
from iam_middleware.authzen import EVALUATION_PATH, EVALUATIONS_PATH, MAX_EVALUATIONS, METADATA_PATH, AuthZEN
from iam_middleware.state import StateUnavailableError
from iam_middleware.testing import session_token

from ._pdp import ACCOUNT, ask, ask_signed, client, make_iam

pytestmark = pytest.mark.anyio

GOOD = {"subject": {"type": "user", "id": "alice"}, "action": {"name": "orders:GetOrder"},
        "resource": {"type": "order", "id": "42"}}


@pytest.fixture(scope="module")
def iam() -> IAM:
    return make_iam()


@pytest.fixture(scope="module")
def app(iam: IAM) -> AuthZEN:
    return AuthZEN(iam, max_body_bytes=64 * 1024)


def assert_refusal(response: Any, status: int, code: str, message: str | None = None) -> None:
    """The project's JSON refusal: status, code, message and the request id in body and header."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message", "request_id"} and body["error"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    assert response.headers["cache-control"] == "no-store"
    if message is not None:
        assert body["message"] == message


async def test_a_pep_without_a_credential_is_refused_401(app: AuthZEN, iam: IAM) -> None:
    response = await ask(app, iam, GOOD, who=None)
    assert_refusal(response, 401, "MissingAuthenticationToken")
    assert response.headers["www-authenticate"] == 'Bearer realm="iam-middleware", AWS4-HMAC-SHA256'
    # Nothing of the body is looked at before the caller is known.
    assert_refusal(await ask(app, iam, "not an object", who=None), 401, "MissingAuthenticationToken")


async def test_a_bad_credential_is_refused_401(app: AuthZEN, iam: IAM) -> None:
    token = session_token(iam, "gateway")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert_refusal(await ask(app, iam, GOOD, who=None, headers={"authorization": f"Bearer {forged}"}), 401,
                   "InvalidSessionSignature")
    assert_refusal(await ask(app, iam, GOOD, who=None, headers={"authorization": "Bearer not-a-token"}), 401,
                   "MalformedToken")


async def test_a_sigv4_pep_is_checked_over_the_body_it_signed(app: AuthZEN, iam: IAM) -> None:
    body = json.dumps(GOOD).encode()
    assert (await ask_signed(app, iam, body, user="gateway")).json() == {"decision": True}
    assert_refusal(await ask_signed(app, iam, body, user="gateway", tamper=True), 401, "SignatureDoesNotMatch")


@pytest.mark.parametrize("subject", [
    {"type": "user", "id": "carol"}, {"type": "user", "id": "ghost"}, {"type": "role", "id": "partner"},
    {"type": "role", "id": "auditor"}])
async def test_a_pep_without_permission_is_refused_403_whether_or_not_the_subject_exists(
        app: AuthZEN, iam: IAM, subject: dict[str, Any]) -> None:
    # alice may not simulate anyone: the same refusal for carol, the role and principals that do not exist.
    response = await ask(app, iam, {**GOOD, "subject": subject}, who="alice")
    assert_refusal(response, 403, "AccessDenied")
    assert response.json()["message"].startswith(
        f"User: arn:app:iam::{ACCOUNT}:user/alice is not authorized to perform: iam:SimulatePrincipalPolicy on "
        f"resource: arn:app:iam::{ACCOUNT}:")


async def test_one_subject_a_pep_may_not_ask_about_refuses_the_whole_batch(app: AuthZEN, iam: IAM) -> None:
    body = {"action": {"name": "orders:GetOrder"}, "resource": {"type": "order", "id": "1"}, "evaluations": [
        {"subject": {"type": "caller", "id": "self"}}, {"subject": {"type": "user", "id": "alice"}}]}
    assert_refusal(await ask(app, iam, body, who="bob", path=EVALUATIONS_PATH), 403, "AccessDenied")


@pytest.mark.parametrize(("body", "message"), [
    ({}, "subject is required."),
    ({**GOOD, "subject": None}, "subject is required."),
    ({**GOOD, "subject": "alice"}, "subject must be an object with a type and an id."),
    ({**GOOD, "subject": {"type": "user"}}, "subject.id must be a non-empty string."),
    ({**GOOD, "subject": {"type": "user", "id": ""}}, "subject.id must be a non-empty string."),
    ({**GOOD, "subject": {"type": "user", "id": 7}}, "subject.id must be a non-empty string."),
    ({**GOOD, "subject": {"type": "user", "id": "a" * 2049}}, "subject.id is longer than 2048 characters."),
    ({**GOOD, "subject": {"type": "group", "id": "readers"}}, 'subject.type must be "user", "role" or "caller".'),
    ({**GOOD, "subject": {"type": "user", "id": "ali ce"}},
     "subject.id must be a user name (1-64 letters, digits and +=,.@_-) or a user ARN."),
    ({**GOOD, "subject": {"type": "user", "id": f"arn:app:iam::{ACCOUNT}:role/partner"}},
     "subject.id must be a user name or a user ARN (arn:app:iam::ACCOUNT:user/NAME)."),
    ({**GOOD, "subject": {"type": "user", "id": f"arn:aws:iam::{ACCOUNT}:user/alice"}},
     "subject.id must be an ARN of partition 'app', the directory's."),
    ({**GOOD, "subject": {"type": "caller", "id": "alice"}},
     'subject.id must be "self" for a subject of type caller (the principal this request\'s own credential '
     'proves).'),
    ({**GOOD, "subject": {"type": "role", "id": "partner", "properties": {"session_name": "x"}}},
     "subject.properties.session_name must be 2-64 letters, digits and +=,.@_-, as a role session name is."),
    ({**GOOD, "subject": {"type": "role", "id": f"arn:app:sts::{ACCOUNT}:assumed-role/partner/s1",
                          "properties": {"session_name": "s2"}}},
     "subject.properties.session_name differs from the session name in subject.id."),
    ({**GOOD, "subject": {"type": "user", "id": "alice", "properties": []}}, "subject.properties must be an object."),
    ({**GOOD, "action": "orders:GetOrder"}, "action must be an object with a name."),
    ({**GOOD, "action": {}}, "action.name must be a non-empty string."),
    ({**GOOD, "action": {"name": "orders:*"}},
     "action.name must be an IAM action (service:Action, e.g. orders:GetOrder) or an action name of this service, "
     "without wildcards."),
    ({**GOOD, "action": {"name": "a:b:c"}},
     "action.name must be an IAM action (service:Action, e.g. orders:GetOrder) or an action name of this service, "
     "without wildcards."),
    ({**GOOD, "resource": {"id": "42"}}, "resource.type must be a non-empty string."),
    ({**GOOD, "resource": {"type": "order", "id": f"arn:app:orders::{ACCOUNT}:order/*"}},
     "resource.id must be one resource's ARN (arn:partition:service:region:account:resource), without wildcards."),
    ({**GOOD, "resource": {"type": "order", "id": "arn:app:orders"}},
     "resource.id must be one resource's ARN (arn:partition:service:region:account:resource), without wildcards."),
    ({**GOOD, "context": ["time"]}, "context must be an object."),
])
async def test_a_malformed_evaluation_is_refused_400_naming_the_member(app: AuthZEN, iam: IAM, body: Any,
                                                                        message: str) -> None:
    assert_refusal(await ask(app, iam, body), 400, "ValidationError", message)


@pytest.mark.parametrize(("body", "message"), [
    ({**GOOD, "evaluations": {}}, "evaluations must be an array of evaluation objects."),
    ({**GOOD, "evaluations": [GOOD, 7]}, "evaluations[1] must be an object."),
    ({"evaluations": [{**GOOD, "resource": None}]}, "evaluations[0].resource is required, in the item or at the top "
                                                    "level."),
    ({"evaluations": [{**GOOD, "subject": {"type": "user", "id": 1}}]},
     "evaluations[0].subject.id must be a non-empty string."),
    ({**GOOD, "evaluations": [{"context": {"aws:SourceIp": "10.0.0.1"}}]},
     "evaluations[0].context['aws:SourceIp'] is computed by IAM and cannot come from the request (of the aws: keys "
     "only aws:RequestTag/... and aws:TagKeys can)."),
    ({**GOOD, "evaluations": [GOOD] * (MAX_EVALUATIONS + 1)},
     f"evaluations holds more than {MAX_EVALUATIONS} items; send fewer per request."),
    ({**GOOD, "evaluations": [GOOD], "options": []}, "options must be an object."),
    ({**GOOD, "evaluations": [GOOD], "options": {"evaluations_semantic": "first"}},
     "options.evaluations_semantic must be one of execute_all, deny_on_first_deny, permit_on_first_permit."),
])
async def test_a_malformed_batch_is_refused_400_naming_the_member(app: AuthZEN, iam: IAM, body: Any,
                                                                   message: str) -> None:
    assert_refusal(await ask(app, iam, body, path=EVALUATIONS_PATH), 400, "ValidationError", message)


async def test_a_body_that_is_not_one_json_object_is_refused(app: AuthZEN, iam: IAM) -> None:
    async with client(app) as pdp:
        token = {"authorization": f"Bearer {session_token(iam, 'gateway')}"}
        sent = {"content-type": "application/json", **token}
        broken = await pdp.post(EVALUATION_PATH, content=b'{"subject": ', headers=sent)
        twice = await pdp.post(EVALUATION_PATH, content=b'{"subject": {}, "subject": {}}', headers=sent)
        array = await pdp.post(EVALUATION_PATH, content=b"[]", headers=sent)
        form = await pdp.post(EVALUATION_PATH, content=json.dumps(GOOD).encode(),
                              headers={**token, "content-type": "text/plain"})
        large = await pdp.post(EVALUATION_PATH, content=b" " * (64 * 1024 + 1), headers=sent)
    assert_refusal(broken, 400, "MalformedJSON")
    assert_refusal(twice, 400, "MalformedJSON")
    assert "duplicate member name 'subject'" in twice.json()["message"]
    assert_refusal(array, 400, "MalformedJSON", "The request body must be a JSON object.")
    assert_refusal(form, 415, "UnsupportedMediaType")
    assert_refusal(large, 413, "EntityTooLarge")


async def test_other_paths_and_methods_are_refused(app: AuthZEN) -> None:
    async with client(app) as pdp:
        get = await pdp.get(EVALUATION_PATH)
        search = await pdp.post("/access/v1/search/subject", json={})
        unpublished = await pdp.get(METADATA_PATH)  # this app was given no pdp_url
    async with client(AuthZEN(app.iam, pdp_url="https://pdp.example")) as pdp:
        posted = await pdp.post(METADATA_PATH, json={})
    assert_refusal(get, 405, "MethodNotAllowed")
    assert get.headers["allow"] == "POST"
    assert_refusal(search, 404, "NotFound")
    assert_refusal(unpublished, 404, "NotFound")
    assert_refusal(posted, 405, "MethodNotAllowed")


async def test_a_failure_is_a_refusal_never_a_decision_or_a_500(monkeypatch: pytest.MonkeyPatch) -> None:
    iam = make_iam()
    app = AuthZEN(iam)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in the evaluator")

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise StateUnavailableError("redis is down")

    monkeypatch.setattr(iam.decisions, "decide", broken)
    assert_refusal(await ask(app, iam, GOOD), 403, "AuthorizationFailed", "The request could not be evaluated.")
    monkeypatch.setattr(iam.authenticators, "authenticate", unavailable)
    response = await ask(app, iam, GOOD)
    assert_refusal(response, 503, "ServiceUnavailable")
    assert response.headers["retry-after"] == "1"
