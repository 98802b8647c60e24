"""Normalisation of values that legitimately differ between two engines.

Ids, times, pids and sizes differ between Docker and berth even when both behave the same, so
they are replaced by placeholders before comparing. Three kinds of rules apply, in order:

1. Known values of this scenario run (container ids saved by steps, the image id) become the
   name of the variable that contains them: `<id>`, `<id:12>` for the 12-character short form.
   Host-specific strings of each engine (socket path, state directory) become placeholders.
2. Text rules from conformance/normalisations.toml (regular expressions), then times.
3. Key rules from the same file: numbers under keys like `Pid` or `Created` become a
   placeholder, except the listed values that carry meaning (a pid of 0 means "not running").
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

# RFC 3339 times as Docker and berth write them: `2024-05-01T10:00:00.123456789Z`.
TIME = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})")
# Docker's zero time, which means "never" (a container that never started) and must match.
ZERO_TIME = "0001-01-01T00:00:00Z"
ID_LIKE = re.compile(r"^(sha256:)?[0-9a-f]{12,64}$")


@dataclass
class TextRule:
    name: str
    pattern: re.Pattern
    replace: str


@dataclass
class KeyRule:
    keys: frozenset
    replace: str
    keep: tuple


class Rules:
    """The rules of conformance/normalisations.toml."""

    def __init__(self, path: Path) -> None:
        with open(path, "rb") as file:
            data = tomllib.load(file)
        self.text = [
            TextRule(rule["name"], re.compile(rule["pattern"]), rule["replace"]) for rule in data.get("text", [])
        ]
        self.keys = [
            KeyRule(frozenset(rule["keys"]), rule["replace"], tuple(rule.get("keep", []))) for rule in data.get("key", [])
        ]


def time_shape(match: re.Match) -> str:
    """Replaces a time by its shape: `<time .9 Z>` is nine fraction digits and `Z`."""
    fraction = f" .{len(match.group(1))}" if match.group(1) else ""
    zone = "Z" if match.group(2) == "Z" else "+hh:mm"
    return f"<time{fraction} {zone}>"


class Normaliser:
    """Normalises the values one engine returned during one scenario."""

    def __init__(self, rules: Rules, known: dict[str, str], literals: dict[str, str] | None = None,
                 shape_times: bool = False, words: dict[str, str] | None = None) -> None:
        """`known` maps variable names to values, and ids among them become `<name>`.
        `literals` maps exact host-specific strings, such as an engine's socket path, to their
        placeholder. `words` maps short values (a one-digit id prefix) to placeholders that
        replace them only where they stand as whole words."""
        self.rules = rules
        self.words = [(re.compile(rf"(?<![0-9A-Za-z]){re.escape(value)}(?![0-9A-Za-z])"), placeholder)
                      for value, placeholder in (words or {}).items()]
        self.shape_times = shape_times
        replacements: dict[str, str] = dict(literals or {})
        for name, value in known.items():
            if not isinstance(value, str) or not ID_LIKE.match(value):
                continue
            bare = value.removeprefix("sha256:")
            replacements[value] = f"<{name}>"
            replacements.setdefault(bare, f"<{name}>")
            if len(bare) == 64:
                replacements.setdefault(bare[:12], f"<{name}:12>")
        # The longest first, so a full id is replaced before its own 12-character prefix.
        ordered = sorted(replacements, key=len, reverse=True)
        self.known = replacements
        self.known_pattern = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None

    def text(self, value: str) -> str:
        if self.known_pattern is not None:
            value = self.known_pattern.sub(lambda m: self.known[m.group(0)], value)
        for pattern, placeholder in self.words:
            value = pattern.sub(placeholder, value)
        for rule in self.rules.text:
            value = rule.pattern.sub(rule.replace, value)
        return TIME.sub(self._time, value)

    def _time(self, match: re.Match) -> str:
        if match.group(0) == ZERO_TIME:
            return ZERO_TIME
        return time_shape(match) if self.shape_times else "<time>"

    def value(self, value, key: str | None = None):
        """Normalises a JSON value; `key` is the object key it was found under."""
        if key is not None:
            for rule in self.rules.keys:
                if key in rule.keys and not isinstance(value, (dict, list)) and value is not None:
                    return value if value in rule.keep else rule.replace
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, dict):
            return {self.text(k): self.value(v, k) for k, v in value.items()}
        return value
