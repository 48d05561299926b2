"""Network loaders: each returns a :class:`NetworkData` with tidy per-unit tables.

========================  =====================================================
``load_ieee33``           IEEE 33-bus feeder, Baran & Wu (1989), pandapower
``load_ieee14``           IEEE 14-bus system, standard or Villanueva-Machado 2025
``load_ieee13``           IEEE 13-node unbalanced feeder, OpenDSS
``load_simbench_mv``      SimBench MV grids (Meinecke et al. 2020), radial
========================  =====================================================

:data:`LOADERS` names every network a notebook may ask for
(:data:`NetworkName`); a network's ``backend`` says which engine runs its
power flow (:mod:`evgrid.networks.opendss` for OpenDSS). This layer imports
only :mod:`evgrid.core`.
"""

from typing import Literal

from evgrid.networks._tables import BACKENDS, NetworkData
from evgrid.networks.ieee13 import load_ieee13
from evgrid.networks.ieee14 import load_ieee14, load_ieee14_villanueva
from evgrid.networks.ieee33 import load_ieee33
from evgrid.networks.simbench_mv import NotRadialError, load_simbench_mv

LOADERS = {
    "ieee33": load_ieee33,
    "ieee14": load_ieee14,
    "ieee14_villanueva2025": load_ieee14_villanueva,
    "ieee13": load_ieee13,
    "simbench_mv": load_simbench_mv,
}

#: The name of a network in :data:`LOADERS` (a ``Literal`` of its keys, for validation).
NetworkName = Literal[tuple(LOADERS)]  # type: ignore[valid-type]

__all__ = [
    "BACKENDS",
    "LOADERS",
    "NetworkData",
    "NetworkName",
    "NotRadialError",
    "load_ieee13",
    "load_ieee14",
    "load_ieee14_villanueva",
    "load_ieee33",
    "load_simbench_mv",
]
