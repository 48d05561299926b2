"""Constraint families shared by the papers' model builders, one ``declare_*`` each.

One module per family (the network interface and linearised DistFlow, the
piecewise-linear squares, the EV fleet block, the bi-level reformulations; the
README's layout map lists them). The modules are listed there, not here:
every paper's pipeline stages depend on this file, and adding a family for one
paper must not re-run the others.

Equation numbers are Kerama (2025)'s unless a docstring says otherwise. A
formulation adds components to a block; it never reads a file, calls a solver
or runs a power flow (that is :mod:`evgrid.analysis`).
"""
