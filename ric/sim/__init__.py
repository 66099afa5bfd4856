"""The multi-vendor E2 node simulator.

Several simulated base stations (E2 nodes) of different vendor profiles share one simulated
radio world in one process; each connects to the RIC's E2 termination as a gRPC client and
speaks the wire contract as a real node would.

Layout:

- :mod:`ric.sim.scenario`  scenario files (TOML in ``seeds/``), validated
- :mod:`ric.sim.profiles`  vendor profiles: identity, KPM styles and metrics, RC actions
- :mod:`ric.sim.radio`     pure radio models: path loss, antennas, SINR, rates, PRB sharing
- :mod:`ric.sim.metrics`   the TS 28.552 measurements and how they are derived
- :mod:`ric.sim.world`     the deterministic, steppable world and its controls
- :mod:`ric.sim.agent`     one E2 node: setup, subscriptions, indications, controls
- :mod:`ric.sim.simulator` the world plus one agent per node on a real-time tick
"""

from ric.sim.agent import NodeAgent
from ric.sim.profiles import VENDOR_PROFILES, VendorProfile
from ric.sim.scenario import Scenario, load_scenario, parse_scenario
from ric.sim.simulator import Simulator, run_sim
from ric.sim.world import SimControlError, Snapshot, World

__all__ = [
    "VENDOR_PROFILES",
    "NodeAgent",
    "Scenario",
    "SimControlError",
    "Simulator",
    "Snapshot",
    "VendorProfile",
    "World",
    "load_scenario",
    "parse_scenario",
    "run_sim",
]
