"""A Griffe extension that lets the API reference read asyncrpc's docstrings as written.

asyncrpc's docstrings are Google style, so they read well in ``help()``, but
they keep two reStructuredText habits that Markdown does not know:

* cross-reference roles, ``:class:`~asyncrpc.AsyncCall```, ``:meth:`reset```;
  each becomes an *optional* mkdocs-autorefs reference: a link where the
  target is rendered in the reference pages, plain code elsewhere (never a
  broken link, never a warning);
* literal blocks introduced by ``::``; each becomes a fenced Python block;
* simple tables (columns under rows of ``=``); each becomes a Markdown table.

Only the text handed to the docstring parser changes; the source is untouched.
Loaded from ``mkdocs.yml`` (``extensions: [docs/_griffe/sphinx_roles.py]``).
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

_ROLE = re.compile(
    r":(?:py:)?(?:class|meth|func|attr|data|mod|exc|obj):`(?P<tilde>~?)(?P<target>[\w.]+)(?:\(\))?`"
)
_LITERAL_INTRO = re.compile(r"(?P<text>\S.*?)(?P<colons>\s?::)\s*$")
_TABLE_RULE = re.compile(r"\s*=+(?: +=+)+\s*")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _resolve(obj: griffe.Object | griffe.Alias, target: str) -> str:
    if target.startswith("asyncrpc."):
        return target
    head, _, rest = target.partition(".")
    scope: Any = obj
    while scope is not None:
        try:
            resolved = scope.resolve(head)
        except Exception:  # griffe raises several kinds; any means "not in this scope"
            scope = scope.parent
            continue
        return f"{resolved}.{rest}" if rest else resolved
    return target


def _roles(obj: griffe.Object | griffe.Alias, text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        target = match["target"]
        shown = target.rsplit(".", 1)[-1] if match["tilde"] else target
        identifier = html.escape(_resolve(obj, target), quote=True)
        return f'<autoref identifier="{identifier}" optional><code>{html.escape(shown)}</code></autoref>'

    return _ROLE.sub(replace, text)


def _literal_blocks(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        intro = _LITERAL_INTRO.fullmatch(line.strip()) if line.strip() else None
        if intro is None or i + 2 >= len(lines) or lines[i + 1].strip():
            out.append(line)
            i += 1
            continue
        base = _indent(line)
        j = i + 2
        block: list[str] = []
        while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > base):
            block.append(lines[j])
            j += 1
        while block and not block[-1].strip():
            block.pop()
            j -= 1
        if not block:
            out.append(line)
            i += 1
            continue
        cut = min(_indent(b) for b in block if b.strip())
        pad = " " * base
        out.append(pad + intro["text"] + ":")
        out.append("")
        out.append(pad + "```python")
        out.extend(pad + b[cut:] if b.strip() else "" for b in block)
        out.append(pad + "```")
        i = j
    return "\n".join(out)


def _simple_tables(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        rule = lines[i]
        if not _TABLE_RULE.fullmatch(rule) or i + 2 >= len(lines) or not _TABLE_RULE.fullmatch(lines[i + 2]):
            out.append(rule)
            i += 1
            continue
        spans = [(m.start(), m.end()) for m in re.finditer(r"=+", rule)]
        end = i + 3
        while end < len(lines) and not _TABLE_RULE.fullmatch(lines[end]):
            end += 1
        if end == len(lines):  # no closing rule: not a table
            out.append(rule)
            i += 1
            continue

        def cells(row: str, spans: list[tuple[int, int]] = spans) -> str:
            bounds = [start for start, _ in spans[1:]] + [len(row) + 1]
            parts = [row[start:stop].strip() for (start, _), stop in zip(spans, bounds, strict=True)]
            return "| " + " | ".join(p.replace("|", "\\|") for p in parts) + " |"

        pad = " " * (len(rule) - len(rule.lstrip()))
        out.append(pad + cells(lines[i + 1]))
        out.append(pad + "|" + " --- |" * len(spans))
        out.extend(pad + cells(row) for row in lines[i + 3 : end] if row.strip())
        i = end + 1
    return "\n".join(out)


class SphinxRoles(griffe.Extension):
    """Rewrite reST roles and ``::`` literal blocks in every docstring of the package."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        seen: set[int] = set()
        stack: list[griffe.Object | griffe.Alias] = [pkg]
        while stack:
            obj = stack.pop()
            if obj.is_alias or id(obj) in seen:
                continue
            seen.add(id(obj))
            if obj.docstring is not None:
                obj.docstring.value = _roles(obj, _simple_tables(_literal_blocks(obj.docstring.value)))
            stack.extend(obj.members.values())
