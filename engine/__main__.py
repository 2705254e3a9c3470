"""``python -m engine`` is the ``guideline`` command."""

from engine.frontends.cli import main

main()
