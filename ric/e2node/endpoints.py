"""The RIC endpoints a node is given, and which one it tries next.

A node may be given several endpoints of one RIC (its replicas). It connects to the first;
when the association fails or ends, the setup is refused or the endpoint cannot be reached, it
moves to the next one, round robin, and waits before trying it: its capped exponential
back-off, or exactly what remains of the time-to-wait that endpoint asked for in an
E2SetupFailure (an endpoint is never tried before its time-to-wait is over). The simulator's
agent and the trace replay both keep one :class:`Endpoints` per node.

::

    endpoints = Endpoints.parse("10.0.0.1:36421,10.0.0.2:36421")
    endpoints.current          # "10.0.0.1:36421"
    endpoints.refused(5.0)     # it answered E2SetupFailure with time_to_wait 5 s
    endpoints.fail_over()      # "10.0.0.2:36421"
    endpoints.wait_s()         # 0.0: this one asked for no wait; use the back-off
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

__all__ = ["Endpoints", "parse_endpoint"]


def parse_endpoint(text: str) -> str:
    """``HOST:PORT`` checked and stripped (the port 1..65535, an IPv6 host in brackets);
    ValueError naming the text and what is wrong."""
    item = text.strip()
    host, sep, port = item.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValueError(f"{text!r} is not HOST:PORT with a port 1-65535, e.g. 127.0.0.1:36421")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise ValueError(f"{text!r}: an IPv6 host goes in brackets, e.g. [::1]:36421")
    return item


class Endpoints:
    """A node's RIC endpoints (at least one, each ``HOST:PORT``) and the one it uses now.

    ``now`` is the monotonic clock the time-to-wait of refusals is kept on. ``check=False``
    takes the texts as they are (a caller that checked them, or a node served in memory that
    connects nowhere); ValueError for none or a repeated one either way.
    """

    __slots__ = ("_index", "_not_before", "_now", "targets")

    def __init__(
        self,
        targets: Sequence[str],
        *,
        now: Callable[[], float] = time.monotonic,
        check: bool = True,
    ) -> None:
        if isinstance(targets, str):
            raise TypeError("Endpoints takes a sequence of HOST:PORT; use Endpoints.parse(text)")
        if not targets:
            raise ValueError("no RIC endpoint given")
        checked = tuple(parse_endpoint(t) for t in targets) if check else tuple(targets)
        repeated = sorted({t for t in checked if checked.count(t) > 1})
        if repeated:
            raise ValueError(f"RIC endpoint {repeated[0]} is given more than once")
        self.targets = checked
        self._index = 0
        self._now = now
        self._not_before: dict[int, float] = {}

    @classmethod
    def parse(cls, text: str, *, now: Callable[[], float] = time.monotonic) -> Endpoints:
        """From comma-separated ``HOST:PORT`` (``"a:36421,b:36421"``); ValueError naming the
        bad one."""
        return cls(text.split(","), now=now)

    def __repr__(self) -> str:
        return f"Endpoints({','.join(self.targets)}, at {self.current})"

    def __len__(self) -> int:
        return len(self.targets)

    def __iter__(self) -> Iterator[str]:
        return iter(self.targets)

    @property
    def current(self) -> str:
        """The endpoint the node uses (or tries next)."""
        return self.targets[self._index]

    def fail_over(self) -> str:
        """Move to the next endpoint (after the last: the first) and return it."""
        self._index = (self._index + 1) % len(self.targets)
        return self.current

    def refused(self, wait_s: float) -> None:
        """The current endpoint refused setup asking for ``wait_s`` s (0: it did not say)."""
        if wait_s > 0:
            self._not_before[self._index] = self._now() + wait_s
        else:
            self._not_before.pop(self._index, None)

    def wait_s(self) -> float:
        """What remains of the current endpoint's time-to-wait (0: none; use the back-off)."""
        until = self._not_before.get(self._index)
        if until is None:
            return 0.0
        left = until - self._now()
        if left <= 0:
            del self._not_before[self._index]
            return 0.0
        return left
