"""Fixtures for the E2-node tests: the simulator tests' fake E2 termination on loopback."""

from tests.sim.conftest import fake_ric

__all__ = ["fake_ric"]
