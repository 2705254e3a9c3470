"""Author tools, on top of the pipeline: they never re-implement a stage.

* ``lint`` -- static checks (one module per family, a registry of checks);
* ``cases`` -- the patient-case runner and its coverage;
* ``diff``, ``diff_report`` -- the semantic diff of two versions and its report;
* ``show`` -- the review document (Markdown or HTML);
* ``scaffold`` -- ``guideline new``.

May import the pipeline, the model, the language, the texts and the base
modules; never the accelerations or the front ends (import-linter checks it).
"""
