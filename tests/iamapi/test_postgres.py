"""The IAM API over a directory in a real PostgreSQL server (tests/_postgres_server.py): boto3 changes it, and the
change is committed and in force at once."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from _postgres_server import postgres_server, postgres_url  # noqa: F401 - fixtures

from .conftest import Live, arn, serve
from .test_boto3 import READ_ORDERS, error, get_order


@pytest.fixture
def live_postgres(postgres_url: str) -> Iterator[Live]:  # noqa: F811 - the fixture of the same name
    yield from serve(postgres_url)


def test_boto3_changes_a_postgresql_directory(live_postgres: Live) -> None:
    live = live_postgres
    assert live.directory.dialect == "postgresql"
    iam = live.client()
    iam.create_user(UserName="pat")
    key = iam.create_access_key(UserName="pat")["AccessKey"]
    pat = (key["AccessKeyId"], key["SecretAccessKey"])
    assert get_order(live, pat) == 403
    iam.put_user_policy(UserName="pat", PolicyName="Read", PolicyDocument=json.dumps(READ_ORDERS))
    assert get_order(live, pat) == 200
    assert error(lambda: iam.delete_user(UserName="pat"))[0] == "DeleteConflict"
    assert error(lambda: iam.create_user(UserName="PAT"))[0] == "EntityAlreadyExists"
    assert live.directory.records()["users"][live.reloader.iam.snapshot.user("pat").id]["inline"]
    assert iam.get_user(UserName="pat")["User"]["Arn"] == arn("user", "pat")
