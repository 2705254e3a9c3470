"""``guideline fmt``: one canonical layout for guideline and case files, comments kept.

Two authors who write the same thing should produce the same text, so that
a review shows what changed and nothing else. The layout is ruamel.yaml's
round trip -- the well-kept tool that keeps comments, quoting and block
scalars as written -- with these choices:

* mappings indented by 2; a list's dash indented by 2 under its key, at the
  top level too (``- id:`` becomes ``  - id:``);
* ``null`` written out (``key:`` alone reads as a forgotten value);
* a flow list of plain values (``exactly: [a, b, ...]``) that does not fit
  in 120 columns becomes a block list, one item per line, so that adding
  or removing one item is a one-line diff; flow mappings (labels, table
  rows) stay as the author wrote them, whatever their length;
* quotes, ``|`` and ``>`` texts, comments and blank lines as written; no
  trailing spaces; one newline at the end.

Formatting never changes what a file means: the text is read back with the
engine's own loader and compared with the original data before anything is
written, and a file is replaced whole (written aside, then renamed).
"""

from __future__ import annotations

import difflib
import io
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import Diagnostic
from engine.loading import parse_yaml, read_source

__all__ = ["WIDTH", "FormatError", "Formatted", "format_file", "format_text", "yaml_files"]

WIDTH = 120  # a flow list longer than this (with its key and indentation) becomes a block list


class FormatError(Exception):
    """The formatter would have changed what the file means (a bug: nothing is written)."""


@dataclass(frozen=True)
class Formatted:
    """One file: its text, its canonical text, and any problem that kept it from being formatted."""

    path: Path
    original: str | None
    formatted: str | None
    problems: tuple[Diagnostic, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether the canonical text differs from the file's."""
        return self.formatted is not None and self.formatted != self.original

    def diff(self) -> str:
        """The change as a unified diff (empty when the file is formatted)."""
        if not self.changed:
            return ""
        return "".join(difflib.unified_diff(
            (self.original or "").splitlines(keepends=True), (self.formatted or "").splitlines(keepends=True),
            f"{self.path} (as written)", f"{self.path} (formatted)"))


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a line: long flow lists are made block lists below instead
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.representer.add_representer(
        type(None), lambda representer, _: representer.represent_scalar("tag:yaml.org,2002:null", "null"))
    return yaml


def _flow_width(node: Any) -> int:
    """How long a flow list of plain values is on one line (``[a, b]``)."""
    return 2 + sum(len(str(item)) + 2 for item in node) - 2


def _unflow(node: Any, indent: int = 0) -> None:
    """Long flow lists of plain values become block lists (see the module's docstring)."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedMap):
        for key, value in node.items():
            plain = isinstance(value, CommentedSeq) and value.fa.flow_style() and \
                all(not isinstance(v, (CommentedMap, CommentedSeq)) for v in value)
            if plain and indent + len(str(key)) + 2 + _flow_width(value) > WIDTH:
                value.fa.set_block_style()
            _unflow(value, indent + 2)
    elif isinstance(node, CommentedSeq):
        for item in node:
            _unflow(item, indent + 4)


def format_text(text: str, file: str) -> tuple[str | None, list[Diagnostic]]:
    """The canonical text of a guideline or case file, or None and the problems that prevent it."""
    doc = parse_yaml(text, file)  # the engine's loader first: its problems are the author's to fix
    if doc.diagnostics:
        return None, list(doc.diagnostics)
    yaml = _yaml()
    data = yaml.load(text)
    _unflow(data)
    out = io.StringIO()
    yaml.dump(data, out)
    formatted = "\n".join(line.rstrip() for line in out.getvalue().splitlines()) + "\n"
    again = parse_yaml(formatted, file)
    if again.diagnostics or again.data != doc.data:
        raise FormatError(f"{file}: formatting would change the file's content; it is left as it is")
    return formatted, []


def format_file(path: Path, *, write: bool) -> Formatted:
    """Format ``path``; with ``write``, replace it (whole, via a temporary file) when it changes."""
    text, problems = read_source(path)
    if text is None:
        return Formatted(path, None, None, tuple(problems))
    formatted, problems = format_text(text, str(path))
    result = Formatted(path, text, formatted, tuple(problems))
    if write and result.changed and formatted is not None:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(formatted)
            os.chmod(temporary, path.stat().st_mode & 0o777)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return result


def yaml_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """The YAML files named or found under ``paths`` (sorted), and the paths that do not exist."""
    found: list[Path] = []
    missing: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            missing.append(str(raw))
    return list(dict.fromkeys(found)), missing
