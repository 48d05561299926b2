"""evgrid: a reproducible research compendium for coordinated EV charging.

The library under the notebooks, in layers that import only downwards
(``tests/test_layers.py`` keeps it so):

* :mod:`evgrid.core`: paths, result writers, validated ``params.yaml``
  sections, the solver layer, the papermill runner, paper-vs-computed;
* :mod:`evgrid.networks` and :mod:`evgrid.data`: test networks and real
  market data, as plain tables;
* :mod:`evgrid.formulations` and :mod:`evgrid.algorithms`: the constraint
  families the models share (network, DistFlow, PWL, EV fleet, bilevel) and
  generic algorithm pieces (Benders cuts);
* :mod:`evgrid.analysis`: AC power flows, AC verification of schedules, plots;
* :mod:`evgrid.papers`: one package per reproduced paper.
"""

__version__ = "0.1.0"
