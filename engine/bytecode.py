"""Code objects that travel between processes: to the compile cache and to workers.

Everything the engine compiles -- expressions, the decision plan, Jinja's code
for texts and the translated texts -- is a code object built from validated
AST nodes. Pickling a compiled guideline carries those code objects as
marshal bytes, so a one-shot CLI run reading the cache, or a worker process
receiving a guideline, skips code generation. Marshal's format and bytecode
belong to one interpreter version: each payload is tagged with the magic
number ``.pyc`` files use, and a payload from another version loads as None,
which tells the caller to compile again from the source it also carries.
"""

from __future__ import annotations

import importlib.util
import marshal
from types import CodeType
from typing import Any

__all__ = ["dump", "load"]

_TAG = importlib.util.MAGIC_NUMBER


def dump(code: CodeType) -> tuple[bytes, bytes]:
    """``code`` as (interpreter tag, marshal bytes)."""
    return _TAG, marshal.dumps(code)


def load(data: Any) -> CodeType | None:
    """The code object of a :func:`dump` payload, or None if it is from another interpreter or damaged."""
    try:
        tag, raw = data
        if tag != _TAG:
            return None
        code = marshal.loads(raw)
    except (ValueError, TypeError, EOFError):
        return None
    return code if isinstance(code, CodeType) else None
