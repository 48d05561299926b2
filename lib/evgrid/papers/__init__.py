"""One package per reproduced paper: its parameters, instance, models, evaluation and runs.

A paper's package uses the shared layers below it (:mod:`evgrid.core`,
:mod:`evgrid.networks`, :mod:`evgrid.data`, :mod:`evgrid.formulations`,
:mod:`evgrid.algorithms`, :mod:`evgrid.analysis`) and never another paper's:
a reader follows one paper from its notebook into its package and back.

* :mod:`evgrid.papers.kerama2025`: bi-level DSO/aggregator scheduling (notebook 01);
* :mod:`evgrid.papers.eva2025`: EV-aggregator market scheduling (notebook 02).
"""
