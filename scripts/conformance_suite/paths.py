"""Field paths into JSON values, as scenarios name them.

Syntax: keys separated by dots, list indexes in brackets, `[*]` to map over a list, `#` for
the length of a list or object. A key that contains dots (a label name) is quoted:
`Config.Labels."com.example.team"`. Examples: `State.Status`, `[*].Names[0]`,
`Processes[*][-1]`, `Processes.#`.
"""

from __future__ import annotations

import re

MISSING = object()
"""The value at a path that does not exist; compared and shown as `<missing>`."""

_TOKEN = re.compile(r'"([^"]*)"|\[(\*|-?\d+)\]|([^.\["]+)|(\.)')


def parse(path: str) -> list:
    """Splits a path into keys (str), indexes (int) and the markers '*' and '#'."""
    tokens: list = []
    position = 0
    while position < len(path):
        match = _TOKEN.match(path, position)
        if not match:
            raise ValueError(f"invalid field path {path!r} at offset {position}")
        quoted, index, key, _dot = match.groups()
        if quoted is not None:
            tokens.append(("key", quoted))
        elif index is not None:
            tokens.append("*" if index == "*" else int(index))
        elif key is not None:
            tokens.append("#" if key == "#" else ("key", key))
        position = match.end()
    return tokens


def extract(value, path: str):
    """Returns the value at `path`, MISSING where it does not exist; `[*]` returns a list."""
    return _walk(value, parse(path))


def _walk(value, tokens: list):
    if not tokens:
        return value
    token, rest = tokens[0], tokens[1:]
    if value is MISSING:
        return MISSING
    if token == "*":
        if not isinstance(value, list):
            return MISSING
        return [_walk(item, rest) for item in value]
    if token == "#":
        return len(value) if isinstance(value, (list, dict)) else MISSING
    if isinstance(token, int):
        if not isinstance(value, list) or not -len(value) <= token < len(value):
            return MISSING
        return _walk(value[token], rest)
    key = token[1]
    if not isinstance(value, dict) or key not in value:
        return MISSING
    return _walk(value[key], rest)


def type_name(value) -> str:
    """Returns the JSON type of a value for presence checks: `string`, `number`, `object`..."""
    if value is MISSING:
        return "<missing>"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
