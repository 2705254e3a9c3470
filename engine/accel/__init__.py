"""Accelerations: the same results as the reference evaluator, faster.

* ``codegen`` -- the whole decision plan (fact checks, derived values, tables,
  rule conditions) as one Python function built from the validated AST;
* ``cache`` -- the compile cache of one-shot command-line runs.

The step-by-step evaluator (``engine.evaluate``) is the definition; every path
here is compared with it by ``tests/test_differential.py`` on generated
guidelines. Only the pipeline (``engine.guideline``, ``engine.evaluate``) may
import this package, which itself sees only the compiled model, the
language and the base modules (import-linter checks it).
"""
