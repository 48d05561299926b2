"""Villanueva-Machado, Luyo & Ríos-Villacorta (2025): Monte-Carlo trips, per-bus EV-aggregator MILPs (DEVCM).

C. W. Villanueva-Machado, J. E. Luyo, A. Ríos-Villacorta, "Operative analysis of controlled
charging management for electric vehicles: centralized and decentralized coordination",
Ingenius no. 34, pp. 43-60, 2025, doi:10.17163/ings.n34.2025.04.

Modules:

* :mod:`.instance`: :class:`DevcmInstance`, the data of one aggregator's model (one load bus,
  one Monte Carlo sample), whoever made it (the authors' runs or our Monte Carlo);
* :mod:`.authors`: the authors' 88 runs (inputs and solver outcomes) read from
  ``data/villanueva2025/authors_runs``;
* :mod:`.dataset`, :mod:`.mcs`: the authors' dataset and the vectorised Monte Carlo;
* :mod:`.devcm`: the decentralized model, Eqs. (5)-(42), (56)-(57), built in Pyomo and solved.
"""
