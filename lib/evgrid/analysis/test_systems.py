"""The ``test_systems`` section of ``params.yaml``: notebook 00, the validated test networks.

Registered by name in :data:`evgrid.core.config.SECTIONS`. The networks it
accepts are those of :data:`evgrid.networks.LOADERS`; it sits with the
analysis that notebook 00 runs (AC power flows and their plots), so that a
change to it touches no paper's stage.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from evgrid.core.config import VoltageLimits
from evgrid.networks import NetworkName

__all__ = ["TestSystemsParams"]


class TestSystemsParams(VoltageLimits):
    """Section ``test_systems``: notebook 00, the three validated test networks.

    ``vmin_pu`` / ``vmax_pu``, the limits drawn on the voltage profiles, come
    from :class:`~evgrid.core.config.VoltageLimits`.
    """

    networks: list[NetworkName] = Field(
        ["ieee33", "ieee14", "ieee14_villanueva2025", "ieee13"],
        min_length=1,
        description="Networks to load, solve and plot",
    )
    ieee13_regulator: Literal["fixed", "auto"] = Field(
        "fixed", description="13-node regulator: taps fixed at the published positions, or auto"
    )
    ieee13_tolerance_pu: float = Field(
        0.002, gt=0, le=0.05, description="Allowed |V| error vs the IEEE published results (pu)"
    )
    results_dir: str = Field("results/test_systems", description="Where result files go")
    figures_dir: str = Field("figures", description="Where figures go")
