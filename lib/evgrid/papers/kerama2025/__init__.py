"""Kerama (2025): bi-level stochastic-robust scheduling of EV aggregators on the IEEE 33-bus feeder.

B. N. Kerama, "A Bi-Level Stochastic-Robust MILP Framework for Coordinated EV
Charging/Discharging with Battery-Degradation and Piecewise-Linear Network
Constraints in Distribution-Level Smart Grids", AJISE 4(2), 2025.

Where the paper leaves a gap we choose, and say so here and in notebook 01:

* **The leader's lever.** The paper's distribution operator (DSO) decides
  nothing the aggregators see. Here it publishes, day-ahead and for every
  scenario alike, a per-aggregator, per-hour import cap ``cap_kw[a, t]`` (a
  dynamic operating envelope). The aggregators' bids then enter the DistFlow
  bus injections, so their response reaches the network.
* **Prices.** Aggregators are price-takers at the time-of-use price
  ``pi_t`` for both bids (Eq. 8's ``lambda+`` = ``lambda-`` = ``pi_t``).
* **Degradation.** ``kappa |p_ch - p_dis|`` of Eq. (8) is charged on the
  throughput ``kappa (p_ch + p_dis)``; the two agree once Eq. (15) holds.
* **Horizon.** 24 hourly periods from 12:00 to 12:00, so that an EV's
  evening-to-morning plug-in window lies inside one horizon.
* **Network.** The Baran & Wu feeder at its real 12.66 kV (the paper's
  4.16 kV is wrong), loads following the IEEE RTS winter-weekday profile.

The package, in the order a reader meets it:

* :mod:`~evgrid.papers.kerama2025.params`: the ``kerama2025`` and
  ``kerama2025_sweeps`` sections of ``params.yaml``;
* :mod:`~evgrid.papers.kerama2025.case`: the instance (network, prices,
  scenarios, fleets) and the schedule table format;
* :mod:`~evgrid.papers.kerama2025.model`: the aggregator LP, the single-level
  model (KKT or strong duality) and its robust network constraints;
* :mod:`~evgrid.papers.kerama2025.decomposition`: Benders over scenarios;
* :mod:`~evgrid.papers.kerama2025.evaluate`: Table 2 metrics from AC power flows;
* :mod:`~evgrid.papers.kerama2025.ties`: the followers alone and their worst tie;
* :mod:`~evgrid.papers.kerama2025.sweep`: Tables 3-6
  (``python -m evgrid.papers.kerama2025.sweep NAME``).
* :mod:`~evgrid.papers.kerama2025.figures`: notebook 01's figures, one function each.
"""
