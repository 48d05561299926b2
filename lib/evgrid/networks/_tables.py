"""The tidy per-unit tables that every network loader returns.

Loaders hand the Pyomo builders two plain DataFrames instead of a
pandapower or OpenDSS object, so that a builder never depends on how a
network was read. Balanced networks have one row per bus and per branch;
the unbalanced IEEE 13-node feeder has one row per bus *phase* and per
branch, with the branch's phase-impedance matrix in long form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

#: Columns every balanced ``buses`` table carries (per unit on ``base_mva``).
BUS_COLUMNS = ["bus", "name", "vn_kv", "p_load_pu", "q_load_pu", "vmin_pu", "vmax_pu", "is_slack"]
#: Columns every balanced ``branches`` table carries (per unit on ``base_mva`` and
#: the from-bus voltage base).
BRANCH_COLUMNS = ["branch", "from_bus", "to_bus", "r_pu", "x_pu", "b_pu", "i_max_pu"]

#: The simulation engines a network's ``net`` can be: what runs its power flow.
Backend = Literal["pandapower", "opendss"]
BACKENDS: tuple[Backend, ...] = ("pandapower", "opendss")


@dataclass(frozen=True)
class NetworkData:
    """A network, as loaded, plus tidy per-unit tables for model builders.

    Attributes
    ----------
    name : str
        Short identifier, e.g. ``"ieee33"``.
    net : Any
        The simulation object the tables were derived from (a pandapower
        ``pandapowerNet`` or an OpenDSS engine), for running power flows.
    buses : pandas.DataFrame
        One row per bus (per bus phase for unbalanced feeders).
    branches : pandas.DataFrame
        One row per branch (lines and transformers).
    base_mva : float
        System power base of every ``*_pu`` column.
    source : str
        The publication or dataset the data come from.
    backend : {"pandapower", "opendss"}
        What ``net`` is, and so what runs its power flow
        (:func:`evgrid.analysis.powerflow.run_ac_power_flow` dispatches on it).
    extra : dict
        Loader-specific tables (e.g. the 13-node phase-impedance matrices, or
        ``layout``: bus coordinates for a one-line diagram).
    """

    name: str
    net: Any
    buses: pd.DataFrame
    branches: pd.DataFrame
    base_mva: float
    source: str
    backend: Backend
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend={self.backend!r} is not known: allowed {', '.join(BACKENDS)}")
