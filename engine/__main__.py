"""``python -m engine`` is the ``guideline`` command."""

from .cli import main

main()
