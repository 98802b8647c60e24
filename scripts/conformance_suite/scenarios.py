"""Loading and checking the scenario files, and filling `{variable}` templates.

A scenario file (conformance/scenarios/AREA.toml) contains `[[scenario]]` tables, each with
`[[scenario.step]]` tables. conformance/README.md describes every key; `STEP_KEYS` below is
the list this loader accepts, so a typo fails the run at load time instead of being ignored.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

# remove_paths: host paths that an engine may create for the scenario (Docker creates a
# missing bind source); each must be under /tmp and contain {name}.
SCENARIO_KEYS = {"name", "covers", "summary", "step", "remove_paths"}

# Keys a step may have. Exactly one of the ACTION_KEYS sets what the step does.
ACTION_KEYS = {"call", "docker", "mark", "join", "ambiguous_prefix", "value"}
STEP_KEYS = ACTION_KEYS | {
    # Request: body (JSON), raw_body (sent as is), tar_body (file name -> content, sent as a
    # tar), query (table appended to the query string), headers (request headers).
    "body", "raw_body", "tar_body", "query", "headers",
    # Hijack: upgrade requests `Upgrade: tcp`. send is written after the reply head, and then
    # close_write shuts down the client's write side.
    "upgrade", "send", "close_write",
    # Flow: async starts the request in the background (joined by a later `join` step),
    # poll repeats it until a condition holds, timeout bounds it in seconds.
    "async", "poll", "timeout",
    # Comparison: see conformance/README.md.
    "fields", "present", "compare_headers", "body_mode", "time_shape", "select", "sort_by",
    "compare", "tar_sizes",
    # CLI steps: text written to the command's stdin.
    "stdin",
    # Variables: name -> field path into the JSON reply.
    "save",
    # A label shown in reports instead of the step number, and free text for readers.
    "label", "note",
    # The version prefix of a call ("" for none); the default is the run's /v1.41.
    "prefix",
}
BODY_MODES = {"json", "text", "frames", "streams", "raw", "tar", "lines", "ignore"}
POLL_KEYS = {"contains", "status", "attempts", "interval"}

# `{name}` or `{name|filter}`; JSON text such as `{"a":1}` never matches, because a variable
# name starts with a letter or underscore.
TEMPLATE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\|([^{}]*))?\}")


class ScenarioError(Exception):
    """A scenario file is invalid; the message names the file and the scenario."""


class MissingVariable(Exception):
    """A template names a variable that no earlier step set, usually after a failed step."""


@dataclass
class Scenario:
    area: str
    name: str
    covers: list[str]
    summary: str
    steps: list[dict]
    remove_paths: list[str]
    index: int = 0
    source: str = ""

    @property
    def full_name(self) -> str:
        return f"{self.area}/{self.name}"


def load(directory: Path) -> list[Scenario]:
    """Loads every `*.toml` file in `directory`, in file-name order."""
    scenarios: list[Scenario] = []
    seen: set[str] = set()
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise ScenarioError(f"no scenario files (*.toml) in {directory}")
    for path in files:
        try:
            with open(path, "rb") as file:
                data = tomllib.load(file)
        except tomllib.TOMLDecodeError as err:
            raise ScenarioError(f"{path}: invalid TOML: {err}") from err
        unknown = set(data) - {"scenario"}
        if unknown:
            raise ScenarioError(f"{path}: unknown top-level keys {sorted(unknown)}: only [[scenario]] tables are allowed")
        for table in data.get("scenario", []):
            scenario = _scenario(path, table)
            if scenario.full_name in seen:
                raise ScenarioError(f"{path}: scenario name {scenario.name!r} is used twice")
            seen.add(scenario.full_name)
            scenario.index = len(scenarios) + 1
            scenarios.append(scenario)
    return scenarios


def _scenario(path: Path, table: dict) -> Scenario:
    name = table.get("name")
    where = f"{path}: scenario {name!r}"
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9.-]*", name):
        raise ScenarioError(f"{where}: name must be lower-case letters, digits, dots and dashes")
    unknown = set(table) - SCENARIO_KEYS
    if unknown:
        raise ScenarioError(f"{where}: unknown keys {sorted(unknown)}")
    steps = table.get("step", [])
    if not steps:
        raise ScenarioError(f"{where}: has no [[scenario.step]]")
    for number, step in enumerate(steps, 1):
        _check_step(f"{where} step {number}", step)
    covers = table.get("covers", [])
    if not isinstance(covers, list) or not all(isinstance(c, str) for c in covers):
        raise ScenarioError(f"{where}: covers must be a list of strings like \"GET /containers/{{id}}/logs?tail\"")
    remove_paths = table.get("remove_paths", [])
    for host_path in remove_paths:
        if not host_path.startswith("/tmp/") or "{name}" not in host_path or ".." in host_path:
            raise ScenarioError(f"{where}: remove_paths entries must be under /tmp/ and contain {{name}}: {host_path!r}")
    return Scenario(path.stem, name, covers, table.get("summary", ""), steps, remove_paths, source=str(path))


def _check_step(where: str, step: dict) -> None:
    unknown = set(step) - STEP_KEYS
    if unknown:
        raise ScenarioError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(STEP_KEYS)}")
    actions = [key for key in ACTION_KEYS if key in step]
    if len(actions) != 1:
        raise ScenarioError(f"{where}: needs exactly one of {sorted(ACTION_KEYS)}, has {actions}")
    if "call" in step and not re.fullmatch(r"(GET|POST|PUT|DELETE|HEAD) /\S*", step["call"]):
        raise ScenarioError(f"{where}: call must be \"METHOD /path\", got {step['call']!r}")
    if "docker" in step and not (isinstance(step["docker"], list) and all(isinstance(a, str) for a in step["docker"])):
        raise ScenarioError(f"{where}: docker must be a list of CLI arguments")
    if step.get("body_mode", "json") not in BODY_MODES:
        raise ScenarioError(f"{where}: body_mode must be one of {sorted(BODY_MODES)}")
    if "poll" in step and set(step["poll"]) - POLL_KEYS:
        raise ScenarioError(f"{where}: poll keys must be among {sorted(POLL_KEYS)}")
    if sum(key in step for key in ("body", "raw_body", "tar_body")) > 1:
        raise ScenarioError(f"{where}: use only one of body, raw_body and tar_body")


def fill(value, variables: dict[str, str]):
    """Replaces `{variable}` templates in every string of a JSON-like value."""
    if isinstance(value, str):
        return TEMPLATE.sub(lambda m: _lookup(m.group(1), m.group(2), variables), value)
    if isinstance(value, list):
        return [fill(item, variables) for item in value]
    if isinstance(value, dict):
        return {fill(key, variables): fill(item, variables) for key, item in value.items()}
    return value


def _lookup(name: str, filter_text: str | None, variables: dict[str, str]) -> str:
    if name not in variables:
        raise MissingVariable(name)
    value = str(variables[name])
    if filter_text is None:
        return value
    if filter_text == "short":
        return value.removeprefix("sha256:")[:12]
    if filter_text == "shape":
        return re.sub(r"[0-9]+", "9", re.sub(r"[A-Za-z]+", "a", value))
    match = re.fullmatch(r"unix([+-]\d+(?:\.\d+)?)?", filter_text)
    if match:
        # Unix seconds of an RFC 3339 time (as inspect shows StartedAt), with an offset.
        seconds = parse_time(value) if not _is_number(value) else float(value)
        return f"{seconds + float(match.group(1) or 0):.6f}"
    raise ScenarioError(f"unknown template filter {filter_text!r} in {{{name}|{filter_text}}}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_time(text: str) -> float:
    """Parses an RFC 3339 time with up to nanoseconds into Unix seconds."""
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})", text)
    if not match:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    base, fraction, zone = match.groups()
    moment = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone))
    return moment.timestamp() + float(f"0.{fraction}" if fraction else 0)


def evaluate(expression: str) -> float | int | str:
    """Evaluates a filled `value` step: numbers joined by + and -, or else the text itself."""
    tokens = re.findall(r"\s*([+-]?)\s*(-?\d+(?:\.\d+)?)", expression)
    if not tokens or "".join(sign + number for sign, number in tokens).replace(" ", "") != expression.replace(" ", ""):
        return expression
    total = 0.0
    for sign, number in tokens:
        total += -float(number) if sign == "-" else float(number)
    return int(total) if total.is_integer() else round(total, 6)
