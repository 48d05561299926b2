"""One interface to the network formulations: :func:`declare_network`.

A model builder asks for "the network" and gets, whatever the formulation,
the same names on its block:

* ``p_import_kw[t]``: active power drawn at the substation (kW, negative:
  export), by period;
* ``v_sq_pu[bus, t]``: squared voltage magnitude (pu^2) of every bus;

plus the formulation's own components (flows, losses, its constraints). Today
there is one formulation, linearised DistFlow
(:func:`evgrid.formulations.distflow.declare_lindistflow`); an AC-OPF or a
second-order-cone one plugs in by adding its ``declare_*`` to
:data:`FORMULATIONS`, with the same signature and the same two names.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import pyomo.environ as pyo

from evgrid.formulations.distflow import declare_lindistflow
from evgrid.networks import NetworkData

__all__ = ["FORMULATIONS", "declare_network"]

#: Formulation name -> its ``declare_*(block, net, periods, p_kw, q_kvar, **options)``.
FORMULATIONS: dict[str, Callable[..., None]] = {"lindistflow": declare_lindistflow}


def declare_network(
    block: pyo.Block,
    net: NetworkData,
    periods: Sequence[Hashable],
    p_kw: Mapping[tuple[Hashable, Hashable], Any],
    q_kvar: Mapping[tuple[Hashable, Hashable], Any],
    *,
    formulation: str = "lindistflow",
    **options: Any,
) -> None:
    """Add the network constraints of ``net`` to ``block`` in the chosen formulation.

    Parameters
    ----------
    block : pyomo.environ.Block
        A fresh (sub-)block; it receives ``p_import_kw[t]`` and
        ``v_sq_pu[bus, t]`` (see the module docstring) and the formulation's
        components.
    net : NetworkData
        The network.
    periods : sequence
        Period labels.
    p_kw, q_kvar : mapping of (bus, period) to float or expression
        Net active / reactive load of each bus (kW, kvar; load minus
        generation plus whatever the model schedules); a missing key is zero.
    formulation : str
        A key of :data:`FORMULATIONS`.
    **options
        Passed to the formulation (for ``"lindistflow"``: ``losses``,
        ``n_segments``, ``v_source_pu``, ``voltage_margin_pu``, ...).

    Raises
    ------
    ValueError
        If ``formulation`` is not known (the message lists the known ones),
        or the formulation rejects an option.
    """
    if formulation not in FORMULATIONS:
        known = ", ".join(map(repr, FORMULATIONS))
        raise ValueError(f"formulation={formulation!r} is not known: allowed {known}")
    FORMULATIONS[formulation](block, net, periods, p_kw, q_kvar, **options)
