"""The compendium's foundation, shared by every paper and imported by everything else.

:mod:`~evgrid.core.paths` (where inputs are read and outputs written),
:mod:`~evgrid.core.outputs` (atomic, rounded result files),
:mod:`~evgrid.core.config` (the ``params.yaml`` sections: base model, shared
blocks, the section registry), :mod:`~evgrid.core.solvers` (``solve()``),
:mod:`~evgrid.core.compare` (paper vs computed), :mod:`~evgrid.core.run` (the
papermill runner of every DVC stage) and :mod:`~evgrid.core.plots_page`
(``make plots``). Nothing here imports another part of :mod:`evgrid`.
"""
