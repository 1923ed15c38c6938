"""Every answer of the IAM API checked against botocore's ``iam`` model before boto3 parses it: an element the model
does not name would be dropped by botocore without a word, so a misspelt member would pass every test that only
reads what boto3 returns. Registered on every test client (``Live.client``)."""

from __future__ import annotations

import datetime
import xml.etree.ElementTree as ET
from typing import Any

NAMESPACE = "{https://iam.amazonaws.com/doc/2010-05-08/}"


class ShapeMismatch(AssertionError):
    pass


def check_answer(operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
    """The ``before-parse`` hook: a 200 answer has the operation's output shape, a refusal AWS's ErrorResponse."""
    body = response_dict["body"]
    root = ET.fromstring(body)
    name = operation_model.name
    if response_dict["status_code"] != 200:
        _expect(root.tag == f"{NAMESPACE}ErrorResponse", f"{name}: refusal root {root.tag}")
        error = root.find(f"{NAMESPACE}Error")
        _expect(error is not None and {c.tag for c in error} == {f"{NAMESPACE}{t}" for t in ("Type", "Code",
                                                                                            "Message")},
                f"{name}: ErrorResponse's Error")
        return
    _expect(root.tag == f"{NAMESPACE}{name}Response", f"{name}: root {root.tag}")
    children = {child.tag.removeprefix(NAMESPACE): child for child in root}
    _expect("ResponseMetadata" in children, f"{name}: no ResponseMetadata")
    output = operation_model.output_shape
    wrapper = output.serialization.get("resultWrapper") if output is not None else None
    if wrapper is None:
        _expect(set(children) == {"ResponseMetadata"}, f"{name}: a result where the model has none")
        return
    _expect(set(children) == {wrapper, "ResponseMetadata"}, f"{name}: {sorted(children)}")
    _structure(children[wrapper], output, f"{name}.{wrapper}")


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise ShapeMismatch(what)


def _structure(element: ET.Element, shape: Any, where: str) -> None:
    names = {member.serialization.get("name", key): member for key, member in shape.members.items()}
    for child in element:
        tag = child.tag.removeprefix(NAMESPACE)
        _expect(tag in names, f"{where}: {tag} is not a member of {shape.name}")
        _value(child, names[tag], f"{where}.{tag}")


def _value(element: ET.Element, shape: Any, where: str) -> None:
    kind = shape.type_name
    text = element.text or ""
    if kind == "structure":
        _structure(element, shape, where)
    elif kind == "list":
        for i, child in enumerate(element):
            _expect(child.tag.removeprefix(NAMESPACE) == "member", f"{where}: list item {child.tag}")
            _value(child, shape.member, f"{where}[{i}]")
    elif kind == "map":
        for child in element:
            _expect(child.tag.removeprefix(NAMESPACE) == "entry", f"{where}: map item {child.tag}")
    elif kind == "boolean":
        _expect(text in ("true", "false"), f"{where}: {text!r} is not a boolean")
    elif kind == "integer":
        _expect(text.lstrip("-").isdigit(), f"{where}: {text!r} is not a whole number")
    elif kind == "timestamp":
        datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    else:
        _expect(len(element) == 0, f"{where}: a {kind} with elements")
        enum = shape.enum if kind == "string" else []
        _expect(not enum or text in enum, f"{where}: {text!r} is not one of {enum}")
