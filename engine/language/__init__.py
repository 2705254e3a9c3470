"""The expression language: what a condition, a derived value or a table input may say.

* ``expressions`` -- parsing (simpleeval's parser), the allow-list and type
  checker, and the rewrite into three-valued (Kleene) Python code;
* ``reference`` -- simpleeval's evaluator with the same three-valued operators,
  the reference the compiled code is tested against;
* ``functions`` -- the one registry of functions (``known``, ``min``, dates...);
* ``units`` -- quantities, declared unit conversions and half-up rounding;
* ``intervals`` -- table cells such as ``[40, 50)`` and their arithmetic.

May import: ``engine.errors``, ``engine.limits``, ``engine.bytecode``. Knows
nothing of guidelines, texts or the pipeline (import-linter checks it).
"""
