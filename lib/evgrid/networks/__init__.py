"""Network loaders: each returns a :class:`NetworkData` with tidy per-unit tables.

========================  =====================================================
``load_ieee33``           IEEE 33-bus feeder, Baran & Wu (1989), pandapower
``load_ieee14``           IEEE 14-bus system, standard or Villanueva-Machado 2025
``load_ieee13``           IEEE 13-node unbalanced feeder, OpenDSS
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

LOADERS = {
    "ieee33": load_ieee33,
    "ieee14": load_ieee14,
    "ieee14_villanueva2025": load_ieee14_villanueva,
    "ieee13": load_ieee13,
}

#: The name of a network in :data:`LOADERS` (a ``Literal`` of its keys, for validation).
NetworkName = Literal[tuple(LOADERS)]  # type: ignore[valid-type]

__all__ = [
    "BACKENDS",
    "LOADERS",
    "NetworkData",
    "NetworkName",
    "load_ieee13",
    "load_ieee14",
    "load_ieee14_villanueva",
    "load_ieee33",
]
