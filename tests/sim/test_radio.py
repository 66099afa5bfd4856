"""Tests of the pure radio models in ric.sim.radio."""

from __future__ import annotations

import numpy as np
import pytest

from ric.sim import radio


def test_path_loss_grows_with_distance_and_frequency() -> None:
    """UMa path loss rises monotonically with distance and with carrier frequency."""
    d = np.array([10.0, 50.0, 200.0, 1000.0, 5000.0])
    pl = radio.path_loss_db(d, 3.5, 25.0, 1.5)
    assert np.all(np.diff(pl) > 0)
    assert np.all(radio.path_loss_db(d, 3.5, 25.0, 1.5) > radio.path_loss_db(d, 0.7, 25.0, 1.5))
    assert 100.0 < float(radio.path_loss_db(np.array([200.0]), 3.5, 25.0, 1.5)[0]) < 130.0


def test_sector_gain_peaks_at_boresight_and_wraps() -> None:
    """A sector antenna has its maximum gain at its azimuth, symmetric and wrapping at 360."""
    az = np.array([350.0])
    gains = radio.sector_gain_db(np.array([350.0, 10.0, 330.0, 170.0]), az)
    assert gains[0] == pytest.approx(14.0)
    assert gains[1] == pytest.approx(gains[2])
    assert gains[3] == pytest.approx(14.0 - 30.0)


def test_spectral_efficiency_is_capped_and_zero_below_threshold() -> None:
    """Spectral efficiency is 0 below the decoding threshold, rises, and saturates at 256-QAM."""
    se = radio.spectral_efficiency(np.array([-20.0, 0.0, 10.0, 60.0]))
    assert se[0] == 0.0
    assert 0.0 < se[1] < se[2] < se[3]
    assert se[3] == pytest.approx(radio.SE_MAX_BPS_PER_HZ)


def test_prb_count_follows_38101_and_refuses_bad_bandwidth() -> None:
    """PRB counts come from TS 38.101-1 and a bandwidth a band cannot carry is refused."""
    assert radio.prb_count(78, 100) == 273
    assert radio.prb_count(78, 40) == 106
    assert radio.prb_count(3, 20) == 106
    with pytest.raises(ValueError, match="not a channel bandwidth"):
        radio.prb_count(3, 100)
    with pytest.raises(ValueError, match="unknown band"):
        radio.prb_count(999, 20)


def _share(
    need: list[float], *, mins: list[float], maxs: list[float], ded: list[float]
) -> radio.PrbShare:
    return radio.share_prbs(
        np.array([need]), np.array([100.0]), np.array([mins]), np.array([maxs]), np.array([ded])
    )


def test_share_prbs_gives_everyone_their_need_when_there_is_room() -> None:
    """With spare PRBs every slice gets exactly what it needs."""
    share = _share([10.0, 20.0, 5.0], mins=[0, 0, 0], maxs=[100, 100, 100], ded=[0, 0, 0])
    np.testing.assert_allclose(share.used[0], [10.0, 20.0, 5.0])


def test_share_prbs_honours_min_max_and_dedicated_quotas() -> None:
    """Minimum shares are guaranteed, maximums cap, and idle dedicated PRBs stay reserved."""
    # Overload: slice 0 wants everything, slice 1 is guaranteed 30 %, slice 2 idle with 20 %
    # dedicated that nobody else may use.
    share = _share([500.0, 80.0, 0.0], mins=[0, 30, 20], maxs=[100, 100, 100], ded=[0, 0, 20])
    used = share.used[0]
    assert used[1] >= 30.0
    assert used[2] == 0.0
    assert used.sum() == pytest.approx(80.0)
    capped = _share([500.0, 0.0, 0.0], mins=[0, 0, 0], maxs=[40, 100, 100], ded=[0, 0, 0])
    assert capped.used[0, 0] == pytest.approx(40.0)
    assert capped.capacity[0, 0] == pytest.approx(40.0)


def test_queue_delay_grows_with_load() -> None:
    """Delay is the base delay when idle and grows steeply as need approaches capacity."""
    base = np.array([1.0, 1.0, 1.0, 1.0])
    delay = radio.queue_delay_ms(base, np.array([0.0, 50.0, 90.0, 500.0]), np.full(4, 100.0))
    assert delay[0] == pytest.approx(1.0)
    assert delay[0] < delay[1] < delay[2] < delay[3]
    assert delay[3] == pytest.approx(1.0 / (1.0 - radio.MAX_LOAD))
