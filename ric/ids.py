"""Identifiers of nodes, cells, UEs and slices, as validated value objects.

Each has one text form, used in measurement matrices, in logs and in the SDK:

=========  ===================================  =================
what       text form                            example
=========  ===================================  =================
node       ``<type>-<mcc>-<mnc>-<node id>``     ``gnb-001-01-1``
cell       ``<mcc>-<mnc>-<NR cell identity>``   ``001-01-4097``
slice      ``<sst>-<sd>``                       ``1-000001``
UE         ``<RAN UE id>``                      ``17``
=========  ===================================  =================
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

__all__ = ["CellId", "NodeId", "NodeType", "Plmn", "SliceId", "parse_ue_id"]

_MCC = re.compile(r"^\d{3}$")
_MNC = re.compile(r"^\d{2,3}$")
_SD = re.compile(r"^[0-9a-f]{6}$")
_NCI_MAX = (1 << 36) - 1


class NodeType(enum.Enum):
    """The kind of E2 node; the value is the prefix of the node's text id."""

    GNB = "gnb"
    GNB_CU = "gnbcu"
    GNB_DU = "gnbdu"
    ENB = "enb"


@dataclass(frozen=True, slots=True)
class Plmn:
    """A PLMN: mobile country code (3 digits) and mobile network code (2 or 3 digits)."""

    mcc: str
    mnc: str

    def __post_init__(self) -> None:
        if not _MCC.match(self.mcc):
            raise ValueError(f"MCC must be 3 digits, got {self.mcc!r}")
        if not _MNC.match(self.mnc):
            raise ValueError(f"MNC must be 2 or 3 digits, got {self.mnc!r}")

    def __str__(self) -> str:
        return f"{self.mcc}-{self.mnc}"


@dataclass(frozen=True, slots=True)
class NodeId:
    """Global E2 node id: PLMN + node id + node type; ``str()`` gives ``gnb-001-01-1``."""

    plmn: Plmn
    node_id: int
    type: NodeType = NodeType.GNB

    def __post_init__(self) -> None:
        if not 0 <= self.node_id < (1 << 32):
            raise ValueError(f"node id must be in 0..2^32-1, got {self.node_id}")

    def __str__(self) -> str:
        return f"{self.type.value}-{self.plmn}-{self.node_id}"

    @classmethod
    def parse(cls, text: str) -> NodeId:
        """Parse ``<type>-<mcc>-<mnc>-<node id>``; raise ValueError naming the text if bad."""
        parts = text.split("-")
        if len(parts) != 4:
            raise ValueError(
                f"node id {text!r} is not '<type>-<mcc>-<mnc>-<id>', e.g. gnb-001-01-1"
            )
        kind, mcc, mnc, num = parts
        try:
            node_type = NodeType(kind)
        except ValueError:
            kinds = ", ".join(t.value for t in NodeType)
            raise ValueError(f"node id {text!r}: type must be one of {kinds}") from None
        if not num.isdigit():
            raise ValueError(f"node id {text!r}: the last part must be a decimal number")
        return cls(Plmn(mcc, mnc), int(num), node_type)


@dataclass(frozen=True, slots=True)
class CellId:
    """NR cell global identity; ``str()`` gives ``001-01-4097``."""

    plmn: Plmn
    nci: int

    def __post_init__(self) -> None:
        if not 0 <= self.nci <= _NCI_MAX:
            raise ValueError(f"NR cell identity must be in 0..2^36-1, got {self.nci}")

    def __str__(self) -> str:
        return f"{self.plmn}-{self.nci}"

    @classmethod
    def parse(cls, text: str) -> CellId:
        """Parse ``<mcc>-<mnc>-<nci>``; raise ValueError naming the text if bad.

        Each control parses its cells several times (the action checks them, the router
        finds the node, the encoder builds the NrCgi), so parsed ids are kept: a cell id is
        immutable, and the memory is bounded (cleared past ``_CELL_MEMORY`` ids)."""
        known = _CELLS.get(text)
        if known is not None and cls is CellId:
            return known
        parts = text.split("-")
        if len(parts) != 3 or not parts[2].isdigit():
            raise ValueError(f"cell id {text!r} is not '<mcc>-<mnc>-<nci>', e.g. 001-01-4097")
        cell = cls(Plmn(parts[0], parts[1]), int(parts[2]))
        if cls is CellId:
            if len(_CELLS) >= _CELL_MEMORY:
                _CELLS.clear()
            _CELLS[text] = cell
        return cell


_CELL_MEMORY = 65_536
"""Parsed cell ids kept by ``CellId.parse`` (a RIC sees a few thousand cells)."""
_CELLS: dict[str, CellId] = {}


@dataclass(frozen=True, slots=True)
class SliceId:
    """S-NSSAI: slice/service type and slice differentiator; ``str()`` gives ``1-000001``.

    ``sd`` is 6 lower-case hex digits; ``"ffffff"`` means the slice has no differentiator.
    """

    sst: int
    sd: str = "ffffff"

    def __post_init__(self) -> None:
        if not 0 <= self.sst <= 255:
            raise ValueError(f"slice SST must be in 0..255, got {self.sst}")
        if not _SD.match(self.sd):
            raise ValueError(f"slice SD must be 6 lower-case hex digits, got {self.sd!r}")

    def __str__(self) -> str:
        return f"{self.sst}-{self.sd}"

    @classmethod
    def parse(cls, text: str) -> SliceId:
        """Parse ``<sst>-<sd>`` (or a bare ``<sst>``); raise ValueError naming the text if bad."""
        sst, _, sd = text.partition("-")
        if not sst.isdigit():
            raise ValueError(f"slice id {text!r} is not '<sst>-<sd>', e.g. 1-000001")
        return cls(int(sst), sd or "ffffff")


def parse_ue_id(text: str) -> int:
    """Parse a UE's text id (its RAN UE id in decimal); raise ValueError naming the text if bad."""
    if not text.isdigit():
        raise ValueError(f"UE id {text!r} is not a decimal RAN UE id")
    return int(text)
