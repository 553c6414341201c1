"""The list filter grammar of the Partner API (docs/partner-api.md#list-filtering).

    filter     := and_expr ("OR" and_expr)*          AND binds tighter than OR
    and_expr   := predicate ("AND" predicate)*
    predicate  := field operator value
    field      := name ("." name)*                   dotted paths into nested objects
    operator   := "=" | "!=" | ">" | ">=" | "<" | "<=" | "~" | "@"
    value      := 'quoted' | "quoted" | bare         '' (or "") inside quotes is a literal quote

No parentheses. ``AND``/``OR`` are keywords in any case. Semantics:

- a path that crosses an array matches if ANY element matches (``subjects='Math'``);
- ``!=`` is the negation of ``=`` (no element equals; a missing field is "not equal");
- comparisons are numeric when both sides are numbers, else string comparisons;
- ``~`` is a case-insensitive substring test; ``@`` takes ``'a,b,c'`` and means "equals one of".

A malformed filter raises ``FilterError`` whose message says where and what.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

OPERATORS: Final = ("!=", ">=", "<=", "=", ">", "<", "~", "@")  # two-character ones first
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_BARE: Final = re.compile(r"[^\s'\"()=!<>~@][^\s'\"()]*")  # not starting like an operator
_SPACE: Final = re.compile(r"\s+")
_KEYWORD: Final = re.compile(r"(AND|OR)(?=\s|$)", re.IGNORECASE)


class FilterError(ValueError):
    """A malformed filter; the message names the position and the problem."""


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "name", "op", "value", "and", "or"
    text: str
    pos: int


@dataclass(frozen=True, slots=True)
class Predicate:
    path: tuple[str, ...]
    op: str
    value: str

    def __call__(self, record: Mapping[str, Any]) -> bool:
        return _test(self, record)


Filter = Callable[[Mapping[str, Any]], bool]


# --- tokenizer ----------------------------------------------------------------------------------


def tokenize(text: str) -> list[Token]:
    """Split a filter into tokens; the expected kind cycles name, op, value, keyword."""
    tokens: list[Token] = []
    pos = 0
    expect = "name"
    while True:
        space = _SPACE.match(text, pos)
        if space:
            pos = space.end()
        if pos >= len(text):
            return tokens
        if text[pos] in "()":
            raise FilterError(f"parentheses are not supported (position {pos})")
        token, pos = _READERS[expect](text, pos)
        tokens.append(token)
        expect = _NEXT[expect]


def _found(text: str, pos: int) -> str:
    return repr(text[pos : pos + 12])


def _read_name(text: str, pos: int) -> tuple[Token, int]:
    match = _NAME.match(text, pos)
    if not match:
        raise FilterError(f"expected a field name at position {pos}, found {_found(text, pos)}")
    return Token("name", match.group(), pos), match.end()


def _read_op(text: str, pos: int) -> tuple[Token, int]:
    for op in OPERATORS:
        if text.startswith(op, pos):
            return Token("op", op, pos), pos + len(op)
    raise FilterError(
        f"expected an operator ({' '.join(OPERATORS)}) at position {pos}, found {_found(text, pos)}"
    )


def _read_value(text: str, pos: int) -> tuple[Token, int]:
    quote = text[pos]
    if quote not in "'\"":
        match = _BARE.match(text, pos)
        if not match:
            raise FilterError(f"expected a value at position {pos}, found {_found(text, pos)}")
        return Token("value", match.group(), pos), match.end()
    chars: list[str] = []
    i = pos + 1
    while i < len(text):
        if text[i] == quote:
            if not text.startswith(quote * 2, i):
                return Token("value", "".join(chars), pos), i + 1
            i += 1  # a doubled quote is one literal quote
        chars.append(text[i])
        i += 1
    raise FilterError(f"unterminated quoted value starting at position {pos}")


def _read_keyword(text: str, pos: int) -> tuple[Token, int]:
    match = _KEYWORD.match(text, pos)
    if not match:
        raise FilterError(f"expected AND or OR at position {pos}, found {_found(text, pos)}")
    return Token(match.group().lower(), match.group(), pos), match.end()


_READERS: Final[dict[str, Callable[[str, int], tuple[Token, int]]]] = {
    "name": _read_name,
    "op": _read_op,
    "value": _read_value,
    "keyword": _read_keyword,
}
_NEXT: Final = {"name": "op", "op": "value", "value": "keyword", "keyword": "name"}


# --- parser -------------------------------------------------------------------------------------


def parse(text: str, fields: Collection[str] | None = None) -> Filter:
    """Compile ``text`` into a predicate over records; ``fields`` limits the first path segment."""
    if not text.strip():
        raise FilterError("the filter is empty")
    tokens = tokenize(text)
    if tokens[-1].kind != "value":
        last = tokens[-1]
        needed = {"name": "an operator", "op": "a value", "and": "a predicate", "or": "a predicate"}
        raise FilterError(
            f"the filter ends too early: {needed[last.kind]} must follow {last.text!r}"
        )
    groups: list[list[Predicate]] = [[]]
    for i in range(0, len(tokens), 4):
        name, op, value = tokens[i : i + 3]
        path = tuple(name.text.split("."))
        if fields is not None and path[0] not in fields:
            raise FilterError(
                f"unknown field {name.text!r} at position {name.pos}; "
                f"fields: {', '.join(sorted(fields))}"
            )
        groups[-1].append(Predicate(path, op.text, value.text))
        if i + 3 < len(tokens) and tokens[i + 3].kind == "or":
            groups.append([])
    return _any_of([_all_of(group) for group in groups])


def _all_of(predicates: list[Predicate]) -> Filter:
    return lambda record: all(p(record) for p in predicates)


def _any_of(filters: list[Filter]) -> Filter:
    return lambda record: any(f(record) for f in filters)


# --- evaluation ---------------------------------------------------------------------------------


def leaves(value: Any, path: tuple[str, ...]) -> Iterator[Any]:
    """Every value at ``path``; arrays along the way (or at the end) fan out to their elements."""
    if isinstance(value, list):
        for item in value:
            yield from leaves(item, path)
        return
    if not path:
        yield value
        return
    if isinstance(value, Mapping) and path[0] in value:
        yield from leaves(value[path[0]], path[1:])


def as_text(value: Any) -> str | None:
    """A scalar as the text filters compare; objects and nulls never match."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return None


def as_number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _test(predicate: Predicate, record: Mapping[str, Any]) -> bool:
    op = predicate.op
    if op == "!=":
        return not _test(Predicate(predicate.path, "=", predicate.value), record)
    for leaf in leaves(record, predicate.path):
        text = as_text(leaf)
        if text is not None and _matches(text, op, predicate.value):
            return True
    return False


def _matches(text: str, op: str, wanted: str) -> bool:
    if op == "~":
        return wanted.casefold() in text.casefold()
    if op == "@":
        return any(_compare(text, option.strip()) == 0 for option in wanted.split(","))
    order = _compare(text, wanted)
    if op == "=":
        return order == 0
    if op == ">":
        return order > 0
    if op == ">=":
        return order >= 0
    if op == "<":
        return order < 0
    return order <= 0  # "<="


def _compare(left: str, right: str) -> int:
    """-1, 0 or 1: numerically when both sides are numbers, else as strings."""
    a, b = as_number(left), as_number(right)
    if a is not None and b is not None:
        return (a > b) - (a < b)
    return (left > right) - (left < right)
