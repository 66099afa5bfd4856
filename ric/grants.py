"""xApp permissions: what each xApp is granted, in the operator's configuration.

A grant lists the report metric names (shell-style patterns, e.g. ``RRU.*``) and row kinds an
xApp may subscribe to, the control actions it may send, and optionally the nodes, cells and
slices it may touch. A subscription outside the grant is refused on that node (the xApp sees
a ``refused`` SubscriptionStatus and the refusal is audited); a control outside it ends with
the ``not_permitted`` outcome (audited like every control).

With ``[xapps] require_grants = true`` an xApp with no grant may do nothing; without it, only
xApps that have a grant are restricted.

.. code-block:: toml

    [xapps.grants.mlb]
    reports = ["RRU.PrbUsedDl", "RRU.PrbAvailDl", "DRB.*", "L1M.RSRP"]
    per = ["cell", "ue"]
    controls = ["handover"]
    nodes = ["gnb-001-01-*"]
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ric.actions import ControlAction, GenericControl, SlicePrbQuota
from ric.xapp import Report

__all__ = ["Grant", "Grants"]


def _any(patterns: Sequence[str], value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


@dataclass(frozen=True)
class Grant:
    """What one xApp may do. ``None`` for a field means no restriction by that field."""

    reports: tuple[str, ...] | None = None
    per: tuple[str, ...] | None = None
    controls: tuple[str, ...] = ()
    nodes: tuple[str, ...] | None = None
    cells: tuple[str, ...] | None = None
    slices: tuple[str, ...] | None = None

    def refuse_report(self, report: Report, node: str) -> str | None:
        """Why ``report`` on ``node`` is outside the grant, or None if it is inside."""
        if self.nodes is not None and not _any(self.nodes, node):
            return f"node {node} is not in its grant"
        if self.per is not None and report.per not in self.per:
            return f"reports per {report.per} are not in its grant"
        if self.reports is not None:
            outside = [m for m in report.metrics if not _any(self.reports, m)]
            if outside:
                return (
                    f"{', '.join(outside)} {'is' if len(outside) == 1 else 'are'} not in its grant"
                )
        if self.cells is not None:
            outside = [c for c in report.cells if not _any(self.cells, c)]
            if outside or not report.cells:
                return f"cells {', '.join(outside) or '(all)'} are not in its grant"
        return None

    def refuse_control(self, action: ControlAction, node: str) -> str | None:
        """Why ``action`` on ``node`` is outside the grant, or None if it is inside."""
        if action.kind not in self.controls:
            return f"{action.kind} controls are not in its grant"
        if self.nodes is not None and not _any(self.nodes, node):
            return f"node {node} is not in its grant"
        if self.cells is not None and not _any(self.cells, action.cell):
            return f"cell {action.cell} is not in its grant"
        slice_id = action.slice if isinstance(action, SlicePrbQuota | GenericControl) else None
        if self.slices is not None and slice_id is not None and not _any(self.slices, slice_id):
            return f"slice {slice_id} is not in its grant"
        return None


class Grants:
    """The grants of every xApp, and whether an xApp without one may do anything."""

    def __init__(
        self, grants: Mapping[str, Grant] | None = None, *, required: bool = False
    ) -> None:
        self._grants = dict(grants or {})
        self.required = required

    def __bool__(self) -> bool:
        return self.required or bool(self._grants)

    def of(self, xapp: str) -> Grant | None:
        """The grant of ``xapp``; an empty grant when grants are required and it has none;
        None when it is unrestricted."""
        grant = self._grants.get(xapp)
        if grant is None and self.required:
            return Grant(reports=(), per=(), controls=())
        return grant
