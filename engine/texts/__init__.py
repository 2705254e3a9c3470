"""Texts: recommendation templates, their sandbox, and every word the engine writes.

* ``templates`` -- a compiled text and how it renders for a patient (Jinja is
  imported only when a text needs it);
* ``sandbox`` -- Jinja's immutable sandbox: checking a text at load, compiling
  it, rendering it when the translated function cannot, branch coverage;
* ``textgen`` -- simple texts translated into Python functions (tested to
  render exactly what Jinja renders);
* ``formatting`` -- numbers, dates and line folding per language;
* ``words`` -- the engine's own words per language, in one place.

May import: ``engine.errors``, ``engine.limits``, ``engine.bytecode``; never the
expression language (import-linter checks it).
"""
