"""``iam-middleware access --format html``: one self-contained page, every value escaped, and in a real headless
Chromium (``_chromium``) a filter that hides rows and columns and a cell that shows its deciding statements.

The browser tests save screenshots under their ``tmp_path`` and, when ``IAM_TEST_ARTEFACTS`` names a folder, copy
them (and the page) there (docs/access.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

from iam_middleware.access import AccessReport, render_html, render_json
from iam_middleware.cli import main
from iam_middleware.cli._access import load_report

from ._chromium import Chromium

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "iam.toml"
APP = "examples.starlette_app:app"
#: Names and policy text are data: each of these must reach the reader as the very text, and never as markup.
NAME = "<script>alert(1)</script>"
TEXT = "</script><img src=x onerror=alert(2)>\"'&amp;"
POLICY = "</script><script>alert('p')</script>"
PATH = "/o/<script>\"'/{id}"


class _Page(HTMLParser):
    """The tags of a page, its text, and the contents of its ``<script>`` and ``<style>`` elements."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.raw: dict[str, list[str]] = {"script": [], "style": []}
        self._inside: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._inside = tag if tag in self.raw else None

    def handle_endtag(self, tag: str) -> None:
        self._inside = None

    def handle_data(self, data: str) -> None:
        if self._inside is not None:
            self.raw[self._inside].append(data)
        else:
            self.text.append(data)


def _hostile(tmp_path: Path) -> AccessReport:
    """A directory whose user, policy, route, action and condition are written to break out of HTML and JSON."""
    document = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "orders:*", "Resource": "*",
         "Condition": {"StringLike": {"aws:UserAgent": TEXT}}}]}
    (tmp_path / "iam.toml").write_text(
        '[settings]\npartition = "app"\nregions = ["local"]\nsession_secret = "' + "s" * 40 + '"\n'
        "[accounts.111122223333]\n"
        f"[policies.{json.dumps(POLICY)}]\ndocument = {json.dumps(json.dumps(document))}\n"
        f"[users.{json.dumps(NAME)}]\npolicies = [{json.dumps(POLICY)}]\n[users.bob]\n"
        f'[[routes]]\nmethod = "GET"\npath = {json.dumps(PATH)}\naction = "orders:Get<Order>"\n'
        'resource = "arn:app:orders::{account}:order/{id}"\n')
    report = load_report(tmp_path / "iam.toml", None, [])
    # A Sid is alphanumeric or the directory refuses it; the page must not count on that, so one is put in here.
    cells = tuple(cell if cell.residual is None else replace(cell, residual=replace(
        cell.residual, candidates=tuple(replace(c, sid=TEXT) for c in cell.residual.candidates)))
        for cell in report.cells)
    return replace(report, cells=cells)


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_the_page_loads_nothing_and_allows_only_its_own_style_and_script() -> None:
    page = _Page(render_html(load_report(DEMO, APP, [])))
    (policy,) = [attrs["content"] for tag, attrs in page.tags if tag == "meta" and attrs.get("http-equiv")]
    assert policy is not None
    (style,), (_, script) = page.raw["style"], page.raw["script"]
    assert policy == (f"default-src 'none'; script-src {_sha256(script)}; style-src {_sha256(style)}; "
                      "base-uri 'none'; form-action 'none'")
    for tag, attrs in page.tags:
        assert not {"src", "href", "style", "action"} & set(attrs), (tag, attrs)
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
    assert [attrs.get("type") for tag, attrs in page.tags if tag == "script"] == ["application/json", None]
    assert "http://" not in script + style and "https://" not in script + style


def test_every_name_and_policy_text_stays_text(tmp_path: Path) -> None:
    html = render_html(_hostile(tmp_path))
    page = _Page(html)
    assert {tag for tag, _ in page.tags} <= {
        "html", "head", "meta", "title", "style", "body", "header", "h1", "p", "code", "main", "section", "h2", "ul",
        "li", "span", "strong", "form", "label", "input", "datalist", "option", "select", "button", "div", "table",
        "caption", "thead", "tr", "th", "tbody", "td", "ol", "dialog", "script"}
    assert len(page.raw["script"]) == 2
    text = "".join(page.text)
    for value in (NAME, PATH, "orders:Get<Order>", f"aws:UserAgent matches {json.dumps(TEXT)}"):
        assert value in text and value not in html
    data = page.raw["script"][0]
    assert "<" not in data and ">" not in data and "&" not in data
    found = json.loads(data)
    assert found["principals"][0]["name"] == NAME and found["routes"][0]["label"] == f"GET {PATH}"
    (statement,) = found["statements"]
    assert statement["policy"] == POLICY and statement["sid"] == TEXT
    assert json.loads(statement["text"])["Condition"]["StringLike"]["aws:UserAgent"] == TEXT
    assert [name for tag, attrs in page.tags for name in attrs.values() if tag == "option"][:2] == [NAME, "bob"]


def test_json_gives_each_statement_as_its_policy_writes_it() -> None:
    report = json.loads(render_json(load_report(DEMO, APP, ["carol"])))
    carol = next(c for c in report["cells"] if c["method"] == "DELETE")
    assert [s["json"] for s in carol["statements"]][-1] == {
        "Effect": "Deny", "Action": "orders:DeleteOrder", "Resource": "arn:app:orders:*:*:order/archived-*"}


def test_output_writes_the_report_to_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "access.html"
    assert main(["access", "--directory", str(DEMO), "--app", APP, "--format", "html", "--output", str(page)]) == 0
    assert capsys.readouterr().out == ""
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert main(["access", "--directory", str(DEMO), "--output", str(tmp_path / "none" / "access.txt")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_the_pages_style_and_script_ship_in_the_wheel() -> None:
    from hatchling.builders.wheel import WheelBuilder

    shipped = {f.distribution_path for f in WheelBuilder(str(ROOT)).recurse_included_files()}
    assert {"iam_middleware/access/_html_assets/report.css", "iam_middleware/access/_html_assets/report.js"} <= shipped


# In a real browser -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    chromium = Chromium.start(tmp_path_factory.mktemp("chromium"))
    try:
        chromium.call("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 860, "deviceScaleFactor": 1,
                                                             "mobile": False})
        yield chromium
    finally:
        chromium.close()


def _open(browser: Chromium, page: Path) -> None:
    browser.events.clear()
    browser.call("Page.navigate", {"url": page.as_uri()})
    browser.wait_for("Page.loadEventFired")


def _quiet(browser: Chromium, page: Path) -> None:
    """Nothing but the page itself was requested, and nothing complained (a CSP violation is a log error)."""
    requests = [e["params"]["request"]["url"] for e in browser.events if e["method"] == "Network.requestWillBeSent"]
    assert requests == [page.as_uri()]
    complaints = [e for e in browser.events
                  if e["method"] in ("Runtime.exceptionThrown", "Page.javascriptDialogOpening")
                  or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] in ("error", "warning"))
                  or (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "warning"))]
    assert complaints == []


def _screenshot(browser: Chromium, path: Path) -> None:
    path.write_bytes(base64.b64decode(browser.call("Page.captureScreenshot", {"format": "png"})["data"]))
    assert path.read_bytes().startswith(b"\x89PNG")
    folder = os.environ.get("IAM_TEST_ARTEFACTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / path.name)


_SHOWN = """(() => {
  const seen = (el) => el.checkVisibility();
  const columns = [...document.querySelectorAll("#matrix thead th[data-p]")].filter(seen);
  const rows = [...document.querySelectorAll("#matrix tbody tr")].filter(seen);
  return {columns: columns.map((th) => th.firstChild.textContent), rows: rows.map((tr) => tr.cells[0].textContent),
          status: document.getElementById("shown").textContent};
})()"""
_DETAILS = """(() => {
  const body = document.getElementById("details-body");
  return {open: document.getElementById("details").open,
          title: document.getElementById("details-title").textContent,
          badge: body.querySelector(".badge").textContent,
          conditions: [...body.querySelectorAll("li")].map((li) => li.textContent),
          statements: [...body.querySelectorAll(".statement h4")].map((h) => h.textContent),
          json: [...body.querySelectorAll(".statement pre")].map((pre) => JSON.parse(pre.textContent))};
})()"""


def _cell(route: int, principal: int) -> str:
    return f'#matrix tbody tr[data-r="{route}"] td[data-p="{principal}"] button'


def test_in_chromium_a_filter_hides_rows_and_columns_and_a_cell_shows_its_statements(
        browser: Chromium, tmp_path: Path) -> None:
    page = tmp_path / "access.html"
    assert main(["access", "--directory", str(DEMO), "--app", APP, "--format", "html", "--output", str(page)]) == 0
    _open(browser, page)
    assert browser.evaluate(_SHOWN)["status"] == "Showing 6 of 6 routes and 5 of 5 principals."

    browser.evaluate("""(() => { const outcome = document.getElementById("f-outcome");
        outcome.value = "Conditional"; outcome.dispatchEvent(new Event("input", {bubbles: true})); })()""")
    assert browser.evaluate(_SHOWN) == {"columns": ["bob", "carol"],
                                        "rows": ["POST /orders", "DELETE /orders/{order_id}"],
                                        "status": "Showing 2 of 6 routes and 2 of 5 principals."}
    assert browser.evaluate(f"document.querySelector({json.dumps(_cell(2, 2))}).parentElement.className") == \
        "o-allowed dim"  # carol may create orders: shown, faded, as the row is shown for bob
    browser.click("#f-principal")
    browser.call("Input.insertText", {"text": "car"})
    assert browser.evaluate(_SHOWN) == {"columns": ["carol"], "rows": ["DELETE /orders/{order_id}"],
                                        "status": "Showing 1 of 6 routes and 1 of 5 principals."}
    _screenshot(browser, tmp_path / "access-report-filtered.png")

    browser.click(_cell(4, 2))
    shown = browser.evaluate(_DETAILS)
    assert shown["open"] and shown["title"] == "carol on DELETE /orders/{order_id}"
    assert shown["badge"] == "Conditional [2]" and shown["conditions"] == ["{order_id} matches archived-*"]
    assert shown["statements"] == ["Allow: AcmeGuardrail, Sid AllowEverythingElse",
                                   "Allow: OrdersFullAccess, Sid AllOrders",
                                   "Allow: users.carol/boundary, statement 0 (no Sid)",
                                   "Deny: users.carol/boundary, statement 1 (no Sid)"]
    assert shown["json"][3] == {"Effect": "Deny", "Action": "orders:DeleteOrder",
                                "Resource": "arn:app:orders:*:*:order/archived-*"}
    _screenshot(browser, tmp_path / "access-report-details.png")

    browser.press("Escape", 27)
    assert browser.evaluate("document.getElementById('details').open") is False
    assert browser.evaluate(f"document.activeElement === document.querySelector({json.dumps(_cell(4, 2))})")
    browser.click("#f-clear")
    assert browser.evaluate(_SHOWN)["status"] == "Showing 6 of 6 routes and 5 of 5 principals."
    browser.evaluate(f"document.querySelector({json.dumps(_cell(2, 1))}).focus()")
    browser.press("Enter", 13, "\r")
    shown = browser.evaluate(_DETAILS)
    assert shown["open"] and shown["title"] == "bob on POST /orders"
    assert shown["conditions"] == ["aws:MultiFactorAuthPresent is true and aws:MultiFactorAuthAge < 3600"]
    assert shown["statements"][-1] == "Allow: OrdersWriteWithMFA, Sid WriteOwnTeamOrdersWithMFA"
    _quiet(browser, page)
    if os.environ.get("IAM_TEST_ARTEFACTS"):
        shutil.copy(page, Path(os.environ["IAM_TEST_ARTEFACTS"]) / page.name)


def test_in_chromium_hostile_names_stay_text(browser: Chromium, tmp_path: Path) -> None:
    page = tmp_path / "hostile.html"
    page.write_text(render_html(_hostile(tmp_path)), encoding="utf-8")
    _open(browser, page)
    assert browser.evaluate("[document.scripts.length, document.querySelectorAll('img').length]") == [2, 0]
    assert browser.evaluate(_SHOWN)["columns"] == [NAME, "bob"]
    assert browser.evaluate(_SHOWN)["rows"] == [f"GET {PATH}"]
    browser.click(_cell(0, 0))
    shown = browser.evaluate(_DETAILS)
    assert shown["title"] == f"{NAME} on GET {PATH}"
    assert shown["conditions"] == [f"aws:UserAgent matches {json.dumps(TEXT)}"]
    assert shown["statements"] == [f"Allow: {POLICY}, Sid {TEXT}"]
    assert shown["json"][0]["Condition"]["StringLike"]["aws:UserAgent"] == TEXT
    assert re.fullmatch(r"Conditional \[1\]", shown["badge"])
    _quiet(browser, page)
