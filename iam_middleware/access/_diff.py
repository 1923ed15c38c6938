"""What a change to the directory (or the app) does to access: cell by cell, the access the new report grants that
the old did not (``added``), the access it takes away (``removed``), each with a counterexample found by
``_witness``; and ``changed`` where the conditions differ but no request tells them apart within the search's
bounds (reported, so that nothing new passes unseen)."""

from __future__ import annotations

from dataclasses import dataclass

from ..routing import Permission
from ._report import AccessReport, Cell
from ._witness import Witness, find_witness

__all__ = ["Finding", "diff_reports"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One principal's access to one route, before and after. ``cell`` is the side the witness is a request on
    (the new one for ``added`` and ``changed``, the old one for ``removed``)."""

    kind: str
    cell: Cell
    before: str
    after: str
    witness: Witness | None

    @property
    def key(self) -> str:
        """``principal METHOD /path``: what an allow-list names."""
        return f"{self.cell.subject.name} {self.cell.route.label}"

    @property
    def grants(self) -> bool:
        """Whether the finding may be new access (``added``, or ``changed`` without a counterexample)."""
        return self.kind != "removed"


def _state(cell: Cell | None) -> str:
    if cell is None:
        return "absent"
    return cell.summary


def _same(old: Cell, new: Cell) -> bool:
    """Nothing a request could tell apart: the same requirement, resource and answer in the same words."""
    before, after = old.route.requirement, new.route.requirement
    same_requirement = before == after or (isinstance(before, Permission) and isinstance(after, Permission)
                                           and before.action == after.action and before.context == after.context)
    return same_requirement and old.resource == new.resource and old.summary == new.summary and \
        old.outcome == new.outcome


def _key(cell: Cell) -> tuple[str, str, str]:
    return cell.subject.name, cell.route.method, cell.route.path


def diff_reports(old: AccessReport, new: AccessReport) -> list[Finding]:
    """The findings, in the new report's order, then those of cells only the old report has."""
    before = {_key(cell): cell for cell in old.cells}
    after = {_key(cell): cell for cell in new.cells}
    order = list(after) + [key for key in before if key not in after]
    findings: list[Finding] = []
    for key in order:
        old_cell, new_cell = before.get(key), after.get(key)
        if old_cell is not None and new_cell is not None and _same(old_cell, new_cell):
            continue
        added = _witness(new_cell, old_cell)
        removed = _witness(old_cell, new_cell)
        was, now = _state(old_cell), _state(new_cell)
        if added is not None and new_cell is not None:
            findings.append(Finding("added", new_cell, was, now, added))
        if removed is not None and old_cell is not None:
            findings.append(Finding("removed", old_cell, was, now, removed))
        if added is None and removed is None and new_cell is not None and new_cell.outcome != "Denied" and (
                old_cell is None or old_cell.outcome not in ("Allowed", "Public")):
            findings.append(Finding("changed", new_cell, was, now, None))
    return findings


def _witness(granting: Cell | None, other: Cell | None) -> Witness | None:
    """A request ``granting`` allows and ``other`` does not. A public route is a grant of its own: to anyone,
    without a credential, so becoming public is new access even for a principal that was allowed."""
    if granting is None:
        return None
    if granting.outcome == "Public":
        return None if other is not None and other.outcome == "Public" else Witness()
    return find_witness(granting, other)
