"""``ric eval``: what a set of xApps does to a simulated network, measured against none.

For each seed a scenario runs twice on the virtual clock through
:func:`ric.trace.harness.run_scenario`, once with no xApp at all and once with the xApps; a
:class:`~ric.eval.metrics.TickRecorder` reads the world's ground truth after every tick, and
the report compares the two runs seed by seed::

    ev = await evaluate("seeds/demo.toml", ["mlb"], seeds=[1, 2, 3], duration_s=300)
    print(render_table(ev))
    write_plot(ev, "eval.png")

- :mod:`ric.eval.metrics`: the figures and their definitions;
- :mod:`ric.eval.runner`: the runs;
- :mod:`ric.eval.report`: summary over seeds, the noise test, the table and the JSON schema;
- :mod:`ric.eval.plot`: the PNG (matplotlib, Agg);
- :mod:`ric.eval.cli`: the ``ric eval`` command.
"""

from __future__ import annotations

from ric.eval.metrics import (
    PING_PONG_WINDOW_S,
    RunMetrics,
    TickRecorder,
    count_ping_pongs,
    percentile,
    sla_violations,
)
from ric.eval.plot import write_plot
from ric.eval.report import compare, render_table, summarise, to_json
from ric.eval.runner import Evaluation, RunResult, evaluate

__all__ = [
    "PING_PONG_WINDOW_S",
    "Evaluation",
    "RunMetrics",
    "RunResult",
    "TickRecorder",
    "compare",
    "count_ping_pongs",
    "evaluate",
    "percentile",
    "render_table",
    "sla_violations",
    "summarise",
    "to_json",
    "write_plot",
]
