"""Figures shared by the notebooks: one-line diagrams and voltage profiles.

:func:`plot_one_line` and :func:`plot_voltage_profile` draw into one axes;
:func:`plot_one_line_diagrams` and :func:`plot_voltage_profiles` make notebook 00's
two figures from them.
"""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from evgrid.analysis.powerflow import PowerFlowResult
from evgrid.networks import NetworkData

PHASE_COLORS = {"a": "tab:red", "b": "tab:green", "c": "tab:blue", "abc": "tab:gray"}


def network_coordinates(data: NetworkData) -> pd.DataFrame:
    """Bus coordinates for a one-line diagram: ``bus``, ``name``, ``x``, ``y``.

    The loader's own layout (``data.extra["layout"]``) if it has one; else a
    radial feeder's :func:`radial_layout`; else the pandapower network's bus
    geodata.
    """
    if "layout" in data.extra:
        return data.extra["layout"].copy()
    if len(data.branches) == len(data.buses) - 1:
        return radial_layout(data)
    if data.backend != "pandapower":
        raise ValueError(f"{data.name} has no layout to draw: give it extra['layout']")
    net = data.net
    xy = [json.loads(g)["coordinates"] for g in net.bus["geo"]]
    return pd.DataFrame(
        {
            "bus": net.bus.index,
            "name": net.bus["name"].astype(str),
            "x": [p[0] for p in xy],
            "y": [p[1] for p in xy],
        }
    )


def radial_layout(data: NetworkData) -> pd.DataFrame:
    """A tidy left-to-right layout of a radial feeder.

    The substation sits at the left; each bus is one step right of its
    parent. The deepest child continues its parent's row, and every other
    child opens a new row below, so laterals never cross.
    """
    children: dict = {}
    for br in data.branches.itertuples():
        children.setdefault(br.from_bus, []).append(br.to_bus)
    depth: dict = {}

    def subtree_depth(bus) -> int:
        if bus not in depth:
            depth[bus] = 1 + max((subtree_depth(c) for c in children.get(bus, [])), default=0)
        return depth[bus]

    root = data.buses.loc[data.buses["is_slack"], "bus"].iloc[0]
    rows, cols = {root: 0}, {root: 0}
    used: dict[int, list[tuple[int, int]]] = {0: [(0, subtree_depth(root))]}

    def free(row: int, lo: int, hi: int, *, siblings_ok: bool = False) -> bool:
        # Laterals of the same parent start at the same column; their links may fan out.
        return all(
            hi <= a or lo >= b or (siblings_ok and a == lo) for a, b in used.get(row, [])
        )

    def place_chain(bus) -> None:
        # Walk the chain of deepest children, then hang its laterals from the
        # farthest parent inwards: each link then passes only rows whose laterals
        # start further right, so nothing crosses.
        laterals = []
        while children.get(bus):
            kids = sorted(children[bus], key=subtree_depth, reverse=True)
            for kid in kids:
                cols[kid] = cols[bus] + 1
            laterals += [(bus, kid) for kid in kids[1:]]
            rows[kids[0]] = rows[bus]
            bus = kids[0]
        for parent, kid in reversed(laterals):
            lo, hi = cols[parent], cols[parent] + subtree_depth(kid)
            row = rows[parent] + 1
            while row <= len(data.buses) and not (free(row, lo, hi) and all(
                free(r, lo, lo + 1, siblings_ok=True) for r in range(rows[parent] + 1, row)
            )):
                row += 1
            if row > len(data.buses):  # no crossing-free row: take the first empty one
                row = max(used) + 1
            rows[kid] = row
            used.setdefault(row, []).append((lo, hi))
            place_chain(kid)

    place_chain(root)
    names = data.buses.set_index("bus")["name"]
    return pd.DataFrame(
        {"bus": list(rows), "name": [names[b] for b in rows], "x": [cols[b] for b in rows],
         "y": [-rows[b] for b in rows]}
    )


def plot_one_line(data: NetworkData, ax: Axes | None = None, *, title: str | None = None) -> Axes:
    """Draw the network's buses and branches; transformers dashed, the slack bus a square."""
    ax = ax or plt.gca()
    xy = network_coordinates(data).set_index("bus")
    for br in data.branches.itertuples():
        if br.from_bus not in xy.index or br.to_bus not in xy.index:
            continue
        a, b = xy.loc[br.from_bus], xy.loc[br.to_bus]
        style = "--" if getattr(br, "kind", "line") in ("transformer", "regulator") else "-"
        ax.plot([a.x, b.x], [a.y, b.y], style, color="0.35", lw=1.2, zorder=1)
    slack = set(data.buses.loc[data.buses["is_slack"], "bus"])
    for bus, row in xy.iterrows():
        marker = "s" if bus in slack else "o"
        ax.scatter(row.x, row.y, s=60 if bus in slack else 22, marker=marker, color="k", zorder=2)
        ax.annotate(str(row["name"]), (row.x, row.y), xytext=(3, 3), textcoords="offset points",
                    fontsize=7)
    ax.set_title(title or data.name)
    ax.set_aspect("equal", adjustable="datalim")
    ax.axis("off")
    return ax


def plot_voltage_profile(
    result: PowerFlowResult,
    ax: Axes | None = None,
    *,
    vmin_pu: float | None = None,
    vmax_pu: float | None = None,
    reference: pd.DataFrame | None = None,
    title: str | None = None,
) -> Axes:
    """Voltage magnitude per bus (per phase for unbalanced feeders), with limits.

    ``reference`` (``bus``, ``phase``, ``vm_pu``) is drawn as open markers, e.g.
    the IEEE published 13-node voltages.
    """
    ax = ax or plt.gca()
    buses = result.buses
    order = list(dict.fromkeys(buses["name"]))
    pos = {name: i for i, name in enumerate(order)}
    for phase, group in buses.groupby("phase", sort=True):
        x = group["name"].map(pos)
        ax.plot(x, group["vm_pu"], "o-" if phase == "abc" else "o", ms=4,
                color=PHASE_COLORS.get(phase, "k"), label="AC power flow" if phase == "abc"
                else f"phase {phase}")
    if reference is not None:
        for phase, group in reference.groupby("phase"):
            x = group["bus"].astype(str).map(pos)
            ax.scatter(x, group["vm_pu"], s=60, facecolors="none",
                       edgecolors=PHASE_COLORS.get(phase, "k"), label=f"IEEE published {phase}")
    for limit in (vmin_pu, vmax_pu):
        if limit is not None:
            ax.axhline(limit, color="tab:orange", ls=":", lw=1)
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels(order, rotation=90, fontsize=7)
    ax.set_xlabel("bus")
    ax.set_ylabel("|V| (pu)")
    ax.set_title(title or result.network)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return ax


def plot_one_line_diagrams(networks: dict[str, NetworkData]) -> Figure:
    """One-line diagrams of several networks side by side (``figures/00_one_line_diagrams.png``).

    Parameters
    ----------
    networks : dict
        Title -> network, drawn left to right by :func:`plot_one_line`.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per network, 5.5 x 5 in each. A one-line diagram has no
        data axes: bus positions are a layout, not a quantity.
    """
    fig, axes = plt.subplots(1, len(networks), figsize=(5.5 * len(networks), 5), squeeze=False)
    for ax, (name, data) in zip(axes[0], networks.items(), strict=True):
        plot_one_line(data, ax, title=name)
    fig.tight_layout()
    return fig


def plot_voltage_profiles(
    flows: dict[str, PowerFlowResult],
    *,
    vmin_pu: float | None = None,
    vmax_pu: float | None = None,
    references: dict[str, pd.DataFrame] | None = None,
) -> Figure:
    """AC voltage profiles of several networks, one row each (``figures/00_voltage_profiles.png``).

    Parameters
    ----------
    flows : dict
        Title -> AC power-flow result, drawn top to bottom by
        :func:`plot_voltage_profile`.
    vmin_pu, vmax_pu : float, optional
        Voltage limits (pu), drawn as dotted lines in every panel.
    references : dict, optional
        Title -> published voltages (``bus``, ``phase``, ``vm_pu``) for the
        networks that have them, e.g. the IEEE 13-node feeder's.

    Returns
    -------
    matplotlib.figure.Figure
        Bus on x, voltage magnitude (pu) on y; 11 x 3.2 in per panel.
    """
    references = references or {}
    fig, axes = plt.subplots(len(flows), 1, figsize=(11, 3.2 * len(flows)), squeeze=False)
    for ax, (name, flow) in zip(axes[:, 0], flows.items(), strict=True):
        plot_voltage_profile(flow, ax, vmin_pu=vmin_pu, vmax_pu=vmax_pu,
                             reference=references.get(name), title=name)
    fig.tight_layout()
    return fig
