#!/usr/bin/env python3
"""Review the guidelines of a checkout against a git revision, as CI does on a pull request.

    python tools/review.py --base origin/main [--out review.md] [PATH...]

Runs, through the ``guideline`` command: validate, lint, test (with coverage),
and diff against --base (Markdown, with the version-bump gate). The Markdown
report -- a summary line, then each step's output in a collapsible section --
is written to --out (default: stdout), ready to paste as a pull-request
comment. Exit 0 when every step passed, 1 when one failed, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.frontends.cli import run


def step(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(argv, out, err)
    return code, (out.getvalue() + err.getvalue()).rstrip()


_DIAGNOSTIC = re.compile(r"^\S.*?:\d+:\d+: (error|warning|info): ")


def _by_severity(text: str) -> tuple[str, str]:
    """(errors and warnings then everything else, info diagnostics) of a step's output, each with its quoted lines."""
    blocks: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        match = _DIAGNOSTIC.match(line)
        if blocks and not match and line[:1].isspace():  # a quoted line, a caret, a hint: with its diagnostic
            blocks[-1][1].append(line)
        else:
            blocks.append((match.group(1) if match else "other", [line]))
    order = {"error": 0, "warning": 1, "other": 2}
    serious = [b for b in blocks if b[0] != "info"]
    serious.sort(key=lambda b: order[b[0]])
    return ("\n".join(line for _, lines in serious for line in lines),
            "\n".join(line for kind, lines in blocks if kind == "info" for line in lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, metavar="GIT_REV", help="revision to compare with")
    parser.add_argument("--out", metavar="FILE", help="write the Markdown report here (default: stdout)")
    parser.add_argument("paths", nargs="*", default=["guidelines"], help="guideline folders (default: guidelines)")
    args = parser.parse_args(argv)
    steps = [
        ("validate", ["validate", *args.paths]),
        ("lint", ["lint", *args.paths]),
        ("test", ["test", *args.paths, "--coverage", "-q"]),
        ("diff", ["diff", "--base", args.base, "--format", "markdown", "--require-version-bump"]),
    ]
    results = [(name, *step(argv_)) for name, argv_ in steps]
    failed = [name for name, code, _ in results if code != 0]
    usage = [name for name, code, _ in results if code == 2]
    head = "✅ all checks passed" if not failed else "❌ failed: " + ", ".join(failed)
    report = [f"## Guideline review against `{args.base}`", "", f"**{head}**", ""]
    for name, code, text in results:
        if name == "diff":
            report += [text, ""]
            continue
        serious, info = _by_severity(text)
        report += [f"<details{' open' if code else ''}><summary>{name}: exit {code}</summary>", "", "```",
                   serious, "```", ""]
        if info:  # notes for the author, folded: the errors above are what blocks the change
            count = sum(1 for line in info.splitlines() if _DIAGNOSTIC.match(line))
            report += [f"<details><summary>{count} info</summary>", "", "```", info, "```", "", "</details>", ""]
        report += ["</details>", ""]
    document = "\n".join(report)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(document, encoding="utf-8")
        print(head)
    else:
        print(document)
    return 2 if usage else (1 if failed else 0)


if __name__ == "__main__":
    raise SystemExit(main())
