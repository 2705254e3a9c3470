"""Resource limits applied to everything that comes from outside.

A base module: the loader, the expression language and the texts all read
these bounds, so they live below all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_LIMITS", "Limits"]


@dataclass(frozen=True)
class Limits:
    """Resource limits applied to untrusted input.

    An embedding application passes its own instance to :func:`engine.load`.
    """

    max_file_bytes: int = 2 * 1024 * 1024
    max_depth: int = 64
    max_scalar_chars: int = 20_000
    max_expression_chars: int = 2_000
    max_expression_depth: int = 40
    max_template_chars: int = 20_000
    max_template_iterations: int = 10_000
    max_output_chars: int = 100_000


DEFAULT_LIMITS = Limits()
