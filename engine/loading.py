"""Stage 1 -- load: YAML text to plain Python data with a position table.

PyYAML's safe scanner and parser are used, but the node graph is turned into
data here rather than by PyYAML's constructors, so that:

* only YAML-1.2-style scalars are resolved: ``true``/``false`` are the only
  booleans (``no``, ``on``, ``yes``, ``oui`` stay text), integers are decimal
  without leading zeros (``017``, ``0o17`` stay text), ``3:30`` stays text,
  and there are no timestamps (dates stay text until the compiler reads them);
* duplicate keys, anchors, aliases, non-text keys and custom tags are errors;
* every value and every key keeps its 1-based ``line:col`` under its path,
  so that later stages (schema, compile) can point at the source;
* problems are collected, not raised one at a time.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml
import yaml.reader
from yaml.composer import Composer
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from engine.errors import HIDDEN_CHARACTERS, Diagnostic
from engine.limits import DEFAULT_LIMITS, Limits

__all__ = ["Document", "Position", "parse_yaml", "read_source"]

YamlPath = tuple[Any, ...]




@dataclass(frozen=True)
class Position:
    """1-based line and column of a node; ``style`` is the scalar style."""

    line: int
    col: int
    style: str | None = None


@dataclass
class Document:
    """Data read from one YAML file, with where each value came from."""

    file: str
    data: Any = None
    positions: dict[YamlPath, Position] = field(default_factory=dict)
    key_positions: dict[YamlPath, Position] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    refused: set[YamlPath] = field(default_factory=set)  # paths of values already reported

    def position(self, path: YamlPath, *, key: bool = False) -> Position:
        """Position of ``path`` (its key if ``key``), else of its nearest ancestor."""
        table = self.key_positions if key else self.positions
        probe = tuple(path)
        while probe:
            if probe in table:
                return table[probe]
            if key and probe in self.positions:
                return self.positions[probe]
            probe = probe[:-1]
        return self.positions.get((), Position(1, 1))

    def diagnostic(
        self,
        path: YamlPath,
        code: str,
        message: str,
        *,
        hint: str = "",
        key: bool = False,
        severity: str = "error",
        col_offset: int = 0,
        line_offset: int = 0,
    ) -> Diagnostic:
        """A diagnostic located at ``path`` in this document."""
        pos = self.position(path, key=key)
        line = pos.line + line_offset
        col = pos.col + col_offset
        return Diagnostic(
            file=self.file,
            line=line,
            col=col,
            code=code,
            message=message,
            severity=severity,
            path=format_path(path),
            hint=hint,
            source_line=self.source_line(line),
        )

    def source_line(self, line: int) -> str:
        """The text of 1-based ``line`` (empty when out of range)."""
        if 1 <= line <= len(self.lines):
            return self.lines[line - 1].rstrip("\r\n")
        return ""


def format_path(path: YamlPath) -> str:
    """``rules[3].when`` style rendering of a YAML path."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


# --- YAML 1.2 style resolution ------------------------------------------------

STR = "tag:yaml.org,2002:str"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
BOOL = "tag:yaml.org,2002:bool"
NULL = "tag:yaml.org,2002:null"
MAP = "tag:yaml.org,2002:map"
SEQ = "tag:yaml.org,2002:seq"
_ALLOWED_TAGS = {STR, INT, FLOAT, BOOL, NULL, MAP, SEQ}
# Stands in for a refused alias, so later stages know not to report it again.
_REFUSED = "tag:guideline-engine,2026:refused"

# Refused in every value and key of a guideline or facts file: engine.errors.HIDDEN_CHARACTERS.
_CHAR_NAMES = {"\u0000": "a NUL character", "\u202e": "a right-to-left override",
               "\u202d": "a left-to-right override", "\u2066": "a left-to-right isolate",
               "\u2067": "a right-to-left isolate", "\u2068": "a first-strong isolate",
               "\u2069": "a pop-directional isolate", "\u202a": "a left-to-right embedding",
               "\u202b": "a right-to-left embedding", "\u202c": "a pop-directional formatting",
               "\u200e": "a left-to-right mark", "\u200f": "a right-to-left mark", "\u061c": "an Arabic letter mark"}
_INT_RE = re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$")
MAX_INT_DIGITS = 15  # a whole number in a file has at most this many digits (facts refuse beyond 1e15 too)
# A float needs a dot or an exponent; its integer part has no leading zero.
_FLOAT_RE = re.compile(
    r"^[-+]?(?:(?:(?:0|[1-9][0-9]*)\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
    r"|(?:0|[1-9][0-9]*)[eE][-+]?[0-9]+)$"
)


class _Resolver(BaseResolver):
    """Core-schema-like resolver: no yes/no/on/off, no sexagesimal, no dates."""


_Resolver.add_implicit_resolver(BOOL, re.compile(r"^(?:true|false)$"), list("tf"))
_Resolver.add_implicit_resolver(NULL, re.compile(r"^(?:~|null|)$"), ["~", "n", ""])
_Resolver.add_implicit_resolver(INT, _INT_RE, list("-+0123456789"))
_Resolver.add_implicit_resolver(FLOAT, _FLOAT_RE, list("-+0123456789."))


class _StopLoading(Exception):
    """Internal: a problem after which the rest of the file cannot be read."""


_FastParser: Any
try:  # libyaml's parser when PyYAML was built with it: about 10x faster than pure Python
    from yaml import _yaml

    _FastParser = _yaml.CParser
except ImportError:  # pragma: no cover - depends on the PyYAML build
    _FastParser = None


class _PyParser(Reader, Scanner, Parser):
    """The pure-Python event stream, used when libyaml is missing."""

    def __init__(self, text: str):
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)


# Our composer (Python) sits on top of whichever parser produces the events,
# so the alias, anchor and depth checks below apply in both cases.
_EventSource: Any = _FastParser or _PyParser


class _Composer(Composer, _Resolver, _EventSource):
    """Safe composer that refuses aliases and anchors and bounds nesting."""

    def __init__(self, text: str, limits: Limits):
        _EventSource.__init__(self, text)
        Composer.__init__(self)
        _Resolver.__init__(self)
        self.limits = limits
        self.problems: list[tuple[int, int, str, str, str]] = []
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(AliasEvent):
            event = self.get_event()
            mark = event.start_mark
            self.problems.append(
                (mark.line + 1, mark.column + 1, "yaml.alias",
                 f"alias '*{event.anchor}' is not allowed",
                 "write the value out in full; aliases are refused so a file cannot expand itself")
            )
            return ScalarNode(_REFUSED, "", event.start_mark, event.end_mark)
        event = self.peek_event()
        if getattr(event, "anchor", None) is not None:
            mark = event.start_mark
            self.problems.append(
                (mark.line + 1, mark.column + 1, "yaml.anchor",
                 f"anchor '&{event.anchor}' is not allowed",
                 "remove the anchor; each value is written where it is used")
            )
            event.anchor = None
        self._depth += 1
        if self._depth > self.limits.max_depth:
            mark = event.start_mark
            self.problems.append(
                (mark.line + 1, mark.column + 1, "yaml.too-deep",
                 f"nesting deeper than {self.limits.max_depth} levels",
                 "flatten the structure")
            )
            raise _StopLoading
        try:
            return cast(Node, super().compose_node(parent, index))
        finally:
            self._depth -= 1


def read_source(path: str | Path, limits: Limits = DEFAULT_LIMITS) -> tuple[str | None, list[Diagnostic]]:
    """Read a UTF-8 file, refusing missing, oversized and non-UTF-8 files."""
    name = str(path)
    p = Path(path)

    def problem(code: str, message: str, hint: str = "") -> tuple[None, list[Diagnostic]]:
        return None, [Diagnostic(name, 0, 0, code, message, hint=hint)]

    if not p.exists():
        return problem("file.not-found", "no such file")
    if p.is_dir():
        return problem("file.is-directory", "is a directory, not a file")
    try:
        size = p.stat().st_size
        if size > limits.max_file_bytes:
            return problem(
                "file.too-large",
                f"file is {size} bytes, more than the limit of {limits.max_file_bytes}",
                "split the file, or raise Limits.max_file_bytes in the embedding application",
            )
        raw = p.read_bytes()
    except OSError as exc:
        return problem("file.unreadable", exc.strerror or str(exc))
    return decode_source(raw, name)


def decode_source(raw: bytes, name: str) -> tuple[str | None, list[Diagnostic]]:
    """Decode bytes as UTF-8 (a leading BOM is accepted and dropped)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [
            Diagnostic(name, line, col, "file.encoding",
                       f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
                       hint="save the file as UTF-8")
        ]
    return text.removeprefix("\ufeff"), []


def parse_yaml(text: str, file: str, limits: Limits = DEFAULT_LIMITS) -> Document:
    """Parse YAML ``text`` into a :class:`Document`; problems go to ``diagnostics``."""
    doc = Document(file=file, lines=text.splitlines())
    if len(text.encode("utf-8")) > limits.max_file_bytes:
        doc.diagnostics.append(
            Diagnostic(file, 0, 0, "file.too-large",
                       f"document is larger than the limit of {limits.max_file_bytes} bytes")
        )
        return doc
    node: Node | None = None
    composer: _Composer | None = None
    try:
        composer = _Composer(text, limits)
        node = composer.get_single_node()
    except _StopLoading:
        node = None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        col = mark.column + 1 if mark else 0
        at = doc.source_line(line)[col - 1: col] if line else ""
        message = "tab character: YAML indentation must use spaces" if at == "\t" else _describe_yaml_error(exc)
        doc.diagnostics.append(
            Diagnostic(file, line, col, "yaml.syntax", message, source_line=doc.source_line(line),
                       hint="check indentation (spaces only) and quoting around this point")
        )
    except yaml.reader.ReaderError as exc:  # control characters and the like
        before = text[: exc.position]
        line = before.count("\n") + 1
        col = exc.position - (before.rfind("\n") + 1) + 1
        doc.diagnostics.append(Diagnostic(file, line, col, "yaml.character",
                                          f"character {exc.character!r} is not allowed in YAML",
                                          hint="remove control characters; save the file as plain UTF-8 text"))
    except yaml.YAMLError as exc:
        doc.diagnostics.append(Diagnostic(file, 0, 0, "yaml.syntax", str(exc).splitlines()[0]))
    for line, col, code, message, hint in composer.problems if composer else []:
        doc.diagnostics.append(
            Diagnostic(file, line, col, code, message, hint=hint, source_line=doc.source_line(line))
        )
    if node is not None and not any(d.code == "yaml.syntax" for d in doc.diagnostics):
        doc.data = _Builder(doc, limits).build(node, ())
    return doc


def _describe_yaml_error(exc: yaml.MarkedYAMLError) -> str:
    problem = (exc.problem or exc.context or "invalid YAML").strip()
    if "'\\t'" in problem or "\\t" in problem:
        return "tab character: YAML indentation must use spaces"
    if exc.context and exc.problem:
        return f"{exc.problem} ({exc.context})"
    return problem


class _Builder:
    """Turns composed nodes into plain data, recording positions and problems."""

    def __init__(self, doc: Document, limits: Limits):
        self.doc = doc
        self.limits = limits

    def _problem(self, node: Node, code: str, message: str, hint: str = "", path: YamlPath = ()) -> None:
        line = node.start_mark.line + 1
        self.doc.diagnostics.append(
            Diagnostic(self.doc.file, line, node.start_mark.column + 1, code, message,
                       path=format_path(path), hint=hint, source_line=self.doc.source_line(line))
        )

    def build(self, node: Node, path: YamlPath) -> Any:
        self.doc.positions[path] = Position(
            node.start_mark.line + 1, node.start_mark.column + 1,
            getattr(node, "style", None) if isinstance(node, ScalarNode) else None,
        )
        if node.tag == _REFUSED:
            self.doc.refused.add(path)
            return None
        if node.tag not in _ALLOWED_TAGS:
            self._problem(node, "yaml.tag", f"tag '{node.tag}' is not allowed",
                          "remove the tag; only plain YAML values are accepted", path)
            self.doc.refused.add(path)
            return None
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if isinstance(node, SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        return None  # pragma: no cover - PyYAML has no other node kinds

    def _scalar(self, node: ScalarNode, path: YamlPath) -> Any:
        value = node.value
        if len(value) > self.limits.max_scalar_chars:
            self._problem(node, "yaml.too-long",
                          f"value is {len(value)} characters, more than the limit of "
                          f"{self.limits.max_scalar_chars}", path=path)
            return None
        hidden = HIDDEN_CHARACTERS.search(value)
        if hidden is not None:
            char = hidden.group()
            self._problem(node, "yaml.hidden-character",
                          f"the value holds {_CHAR_NAMES.get(char, 'a control character')} (U+{ord(char):04X}), which "
                          "shows text in another order than it is read, or hides it",
                          "remove it; write the text in plain characters", path=path)
            self.doc.refused.add(path)
            return None
        tag = node.tag
        try:
            if tag == STR:
                return value
            if tag == NULL:
                return None
            if tag == BOOL:
                if value not in ("true", "false"):
                    raise ValueError
                return value == "true"
            if tag == INT:
                if not _INT_RE.match(value):
                    raise ValueError
                if len(value.lstrip("+-")) > MAX_INT_DIGITS:
                    self._problem(node, "yaml.number-range", f"{value[:20]}... has more than {MAX_INT_DIGITS} digits",
                                  "no value of a guideline or a patient comes near; quote it if it is text", path=path)
                    self.doc.refused.add(path)
                    return None
                return int(value)
            if tag == FLOAT:
                if not _FLOAT_RE.match(value):
                    raise ValueError
                number = float(value)
                if not math.isfinite(number):
                    self._problem(node, "yaml.number-range", f"{value} is beyond the largest number (about 1.8e308)",
                                  path=path)
                    self.doc.refused.add(path)
                    return None
                return number
        except ValueError:
            self._problem(node, "yaml.value", f"'{value}' is not a valid {tag.rsplit(':', 1)[-1]}",
                          path=path)
            return None
        return value  # pragma: no cover - tags are checked before

    @staticmethod
    def _no_colon(key_node: Node, value_node: Node) -> bool:
        """``{fr: Âge, en ans}``: 'en ans' is a key written without ':' (its empty value starts where it ends)."""
        return (isinstance(value_node, ScalarNode) and value_node.tag == NULL and value_node.value == ""
                and value_node.start_mark.index == key_node.end_mark.index)

    def _mapping(self, node: MappingNode, path: YamlPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first_seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag != STR:
                shown = key_node.value if isinstance(key_node, ScalarNode) else "a collection"
                self._problem(key_node, "yaml.key-type",
                              f"key {shown!r} is not text",
                              "quote the key, e.g. \"1\": ...", path)
                continue
            key = key_node.value
            key_line = key_node.start_mark.line + 1
            if HIDDEN_CHARACTERS.search(key):
                self._problem(key_node, "yaml.hidden-character",
                              f"the key {key.encode('unicode_escape').decode()!r} holds a hidden or reordering character",
                              "remove it; write the key in plain characters", path + (key,))
                continue
            if key in first_seen:
                self._problem(key_node, "yaml.duplicate-key",
                              f"duplicate key '{key}' (first defined on line {first_seen[key]})",
                              "remove one of the two; YAML would silently keep only the last",
                              path + (key,))
                continue
            if node.flow_style and self._no_colon(key_node, value_node):
                previous = next(reversed(out), None)
                before = out[previous] if previous is not None and isinstance(out[previous], str) else "..."
                hint = (f"quote the text it belongs to: {previous}: \"{before}, {key}\""
                        if previous is not None else "quote the text that holds the comma")
                self._problem(key_node, "yaml.comma-in-text",
                              f"'{key}' follows a comma inside {{...}}: an unquoted comma ends a text there",
                              hint, path + (key,))
                continue
            first_seen[key] = key_line
            self.doc.key_positions[path + (key,)] = Position(key_line, key_node.start_mark.column + 1)
            out[key] = self.build(value_node, path + (key,))
        return out
