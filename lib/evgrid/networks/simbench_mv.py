"""SimBench medium-voltage grids (Meinecke et al. 2020), operated radially.

The ``simbench`` wheel ships each grid with its switches, its HV/MV
transformers and a year of 15-minute load and generation profiles. DistFlow
needs a radial network with one root, so :func:`load_simbench_mv` makes the
switching state explicit before building the tables:

* a closed bus-bus switch joins two busbar sections: the buses are fused;
* an open line, transformer or bus-bus switch takes its element out of the
  network (the normally open points that make an MV ring run radially);
* transformers left in parallel between the same two buses (the two HV/MV
  units of a substation) become one unit of ``parallel = 2``, i.e. half the
  impedance;
* buses left without a connection to the external grid are dropped with
  their loads and generators (none in the shipped MV grids);
* the result must be a tree: a loop that remains is named, bus by bus.

The slack is the 110 kV bus of the external grid; the transformer is the
first branch of the tree. Loads and static generators keep their SimBench
indices and ``profile`` names, so :func:`evgrid.data.simbench.day_profiles`
can scale them to any day of the year.
"""

from __future__ import annotations

import warnings

import networkx as nx
import pandapower as pp
import pandapower.toolbox as tb
import pandas as pd

from evgrid.core.config import check_voltage_limits
from evgrid.networks._pandapower import tables_from_pandapower
from evgrid.networks._tables import NetworkData

SOURCE_SIMBENCH = (
    "S. Meinecke et al., 'SimBench -- A Benchmark Dataset of Electric Power Systems to "
    "Compare Innovative Solutions Based on Power Flow Analysis', Energies 13(12):3290, 2020, "
    "doi:10.3390/en13123290; grids and profiles as shipped by the simbench wheel "
    "(ODbL 1.0), operated radially at their open switches."
)

#: The SimBench MV grids this loader accepts (switch-level, no LV grids below).
MV_CODES = ("1-MV-rural--0-sw", "1-MV-semiurb--0-sw", "1-MV-urban--0-sw", "1-MV-comm--0-sw")


class NotRadialError(ValueError):
    """A network that is meant to be radial holds a loop, or buses the root cannot reach."""


def load_simbench_mv(
    code: str = "1-MV-semiurb--0-sw", *, vmin_pu: float = 0.95, vmax_pu: float = 1.05
) -> NetworkData:
    """Load a SimBench MV grid in its radial operating state.

    Parameters
    ----------
    code : str
        One of :data:`MV_CODES` (default: the semi-urban 20 kV grid, 117
        buses, 115 loads).
    vmin_pu, vmax_pu : float
        Voltage limits written into the bus table (0.8 <= vmin < vmax <= 1.2).

    Returns
    -------
    NetworkData
        ``net`` is the radial pandapower network (buses re-indexed
        ``0..n-1``, the external grid's bus first); ``buses``/``branches``
        are per unit on ``net.sn_mva``; ``extra["switching"]`` lists what
        was done to each switch.

    Raises
    ------
    ValueError
        If ``code`` is not an MV grid of :data:`MV_CODES` or a limit is out
        of range.
    NotRadialError
        If the grid is not a tree after its switches (naming the loop).
    """
    if code not in MV_CODES:
        raise ValueError(f"code={code!r} is not a SimBench MV grid here: allowed {', '.join(MV_CODES)}")
    check_voltage_limits(vmin_pu, vmax_pu)
    import simbench as sb  # imported here: the wheel is large and only this loader needs it

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        net = sb.get_simbench_net(code)
    switching = radialise(net)
    buses, branches = tables_from_pandapower(net, vmin_pu=vmin_pu, vmax_pu=vmax_pu)
    return NetworkData(
        name=code,
        net=net,
        buses=buses,
        branches=branches,
        base_mva=float(net.sn_mva),
        source=SOURCE_SIMBENCH,
        backend="pandapower",
        extra={"switching": switching},
    )


def radialise(net: pp.pandapowerNet) -> pd.DataFrame:
    """Apply ``net``'s switches and make it one radial tree rooted at its external grid, in place.

    See the module docstring for the rules. Returns one row per switch:
    ``switch``, ``et``, ``bus``, ``element``, ``closed`` and ``action``.
    Raises :class:`NotRadialError` naming a remaining loop, or if ``net`` has
    not exactly one external grid.
    """
    if len(net.ext_grid) != 1:
        raise NotRadialError(f"a radial grid has one external grid; this one has {len(net.ext_grid)}")
    actions = []
    for idx, sw in net.switch.sort_index().iterrows():
        action = "none"
        if not sw.closed:
            if sw.et == "l":
                net.line.at[sw.element, "in_service"] = False
                action = f"line {sw.element} out of service"
            elif sw.et == "t":
                net.trafo.at[sw.element, "in_service"] = False
                action = f"transformer {sw.element} out of service"
            else:
                action = "buses kept apart"
        actions.append((idx, sw.et, int(sw.bus), int(sw.element), bool(sw.closed), action))
    fuse = net.switch[(net.switch["et"] == "b") & net.switch["closed"]]
    net.switch.drop(net.switch.index, inplace=True)
    actions = pd.DataFrame(actions, columns=["switch", "et", "bus", "element", "closed", "action"])
    alias: dict[int, int] = {}  # fused bus -> the bus it now is

    def now(bus: int) -> int:
        while bus in alias:
            bus = alias[bus]
        return bus

    for idx, sw in fuse.iterrows():
        keep, gone = _fused_pair(net, now(int(sw.bus)), now(int(sw.element)))
        if keep != gone:
            tb.fuse_buses(net, keep, gone)
            alias[gone] = keep
        actions.loc[actions["switch"] == idx, "action"] = f"bus {gone} fused into bus {keep}"
    _merge_parallel_transformers(net)
    for table in ("line", "trafo"):
        out = net[table].index[~net[table]["in_service"].astype(bool)]
        if len(out):
            (tb.drop_lines if table == "line" else tb.drop_trafos)(net, out)
    graph = _graph(net)
    root = int(net.ext_grid.bus.iloc[0])
    reached = nx.node_connected_component(graph, root)
    isolated = [b for b in net.bus.index if b not in reached]
    if isolated:
        tb.drop_buses(net, isolated)
        graph = _graph(net)
    n_loops = graph.number_of_edges() - (graph.number_of_nodes() - 1)
    if n_loops:
        loop = [u for u, _v, *_key in nx.find_cycle(graph, root)]
        names = " - ".join(str(net.bus.at[b, "name"]) for b in loop)
        raise NotRadialError(
            f"the grid is not radial after its switches: {n_loops} loop(s), e.g. through buses "
            f"{names}; open a switch on each loop"
        )
    # the root first, then breadth-first order: buses 0..n-1
    order = [root, *(b for _u, b in nx.bfs_edges(graph, root))]
    tb.reindex_buses(net, {old: new for new, old in enumerate(order)})
    net.bus.sort_index(inplace=True)
    return actions


def _fused_pair(net: pp.pandapowerNet, a: int, b: int) -> tuple[int, int]:
    """Which of two buses joined by a closed switch to keep: the external grid's, else the lower."""
    root = int(net.ext_grid.bus.iloc[0])
    if b == root:
        return b, a
    return (a, b) if a == root or a < b else (b, a)


def _merge_parallel_transformers(net: pp.pandapowerNet) -> None:
    """Identical transformers between the same two buses become one with ``parallel`` raised."""
    on = net.trafo[net.trafo["in_service"].astype(bool)]
    drop = []
    for (_hv, _lv), group in on.groupby(["hv_bus", "lv_bus"]):
        if len(group) < 2:
            continue
        first = group.index[0]
        cols = ["sn_mva", "vk_percent", "vkr_percent", "vn_hv_kv", "vn_lv_kv", "tap_pos"]
        if not (group[cols].nunique(dropna=False) <= 1).all():
            raise NotRadialError(
                f"transformers {group.index.tolist()} run in parallel but differ in "
                f"{[c for c in cols if group[c].nunique(dropna=False) > 1]}: not merged"
            )
        net.trafo.at[first, "parallel"] = int(group["parallel"].sum())
        drop.extend(group.index[1:])
    if drop:
        tb.drop_trafos(net, drop)


def _graph(net: pp.pandapowerNet) -> nx.MultiGraph:
    """Buses and in-service lines and transformers, as an undirected multigraph."""
    g = nx.MultiGraph()
    g.add_nodes_from(net.bus.index)
    for row in net.line[net.line["in_service"].astype(bool)].itertuples():
        g.add_edge(int(row.from_bus), int(row.to_bus))
    for row in net.trafo[net.trafo["in_service"].astype(bool)].itertuples():
        g.add_edge(int(row.hv_bus), int(row.lv_bus))
    return g
