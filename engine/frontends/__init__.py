"""Front ends: the ways in for people and programs.

* ``cli`` -- the ``guideline`` command (``run(argv, stdout, stderr, stdin) -> int``);
* ``batch`` -- streaming evaluation of cohorts (JSON Lines, CSV), in worker
  processes with ``--jobs``.

The top layer: may import everything below, is imported by nothing in the
engine but ``engine.__main__``.
"""
