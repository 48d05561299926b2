"""Constraint families shared by the papers' model builders, one ``declare_*`` each.

* :mod:`~evgrid.formulations.network`: :func:`declare_network`, one interface to
  every network formulation (today linearised DistFlow);
* :mod:`~evgrid.formulations.distflow`: :func:`declare_lindistflow`, Eqs. (2)-(7);
* :mod:`~evgrid.formulations.pwl`: piecewise-linear squares, Eqs. (17)-(19);
* :mod:`~evgrid.formulations.fleet`: the EV battery block, Eqs. (11)-(15);
* :mod:`~evgrid.formulations.bilevel`: KKT and strong-duality reformulations.

Equation numbers are Kerama (2025)'s unless a docstring says otherwise. A
formulation adds components to a block; it never reads a file, calls a solver
or runs a power flow (that is :mod:`evgrid.analysis`).
"""
