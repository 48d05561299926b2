"""One package per reproduced paper: its parameters, instance, models, evaluation and runs.

A paper's package uses the shared layers below it (:mod:`evgrid.core`,
:mod:`evgrid.networks`, :mod:`evgrid.data`, :mod:`evgrid.formulations`,
:mod:`evgrid.algorithms`, :mod:`evgrid.analysis`) and never another paper's:
a reader follows one paper from its notebook into its package and back.
Each package ``<paper>`` holds ``params.py`` with a ``SECTIONS`` dict of its
``params.yaml`` sections, found there by name (:func:`evgrid.core.config.section_model`).
The list of papers is in the README (kept out of here: every paper's pipeline
stages depend on this file, and adding a paper must not re-run them).
"""
