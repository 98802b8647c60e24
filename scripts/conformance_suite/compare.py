"""Compares Docker's trace of a scenario with berth's and decides the verdict, applying the
differences recorded in conformance/known-differences.toml."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from . import paths
from .runner import StepResult, Trace
from .scenarios import Scenario, ScenarioError

AGREE = "agree"
DIFFER = "differ"
RECORDED = "recorded"
NOT_IMPLEMENTED = "not-implemented"
ERROR = "error"
VERDICTS = (AGREE, DIFFER, RECORDED, NOT_IMPLEMENTED, ERROR)

# The items compared for a step whose status differs.
STATUS_ITEMS = ("status", "message", "error", "exit_code", "stdout", "stderr", "poll", "timed_out")

# berth's CLI-visible sign of a missing endpoint: its 501 messages.
NOT_IMPLEMENTED_TEXT = re.compile(r"does not implement|not implemented|not supported yet", re.IGNORECASE)


@dataclass
class Record:
    """One deliberate difference: which scenarios and items it covers, and why."""

    scenario: str
    items: list[str]
    reason: str
    step: str | None = None
    used: int = 0

    def matches(self, scenario: str, step: str, item: str) -> bool:
        return (fnmatch.fnmatchcase(scenario, self.scenario)
                and (self.step is None or self.step == step)
                and any(fnmatch.fnmatchcase(item, pattern) for pattern in self.items))


def load_records(path: Path) -> list[Record]:
    with open(path, "rb") as file:
        data = tomllib.load(file)
    records = []
    for number, entry in enumerate(data.get("difference", []), 1):
        unknown = set(entry) - {"scenario", "items", "reason", "step"}
        if unknown or "scenario" not in entry or not entry.get("reason"):
            raise ScenarioError(f"{path}: difference {number} needs scenario and reason (and may have items, "
                                f"step); unknown keys: {sorted(unknown)}")
        step = entry.get("step")
        records.append(Record(entry["scenario"], entry.get("items", ["*"]), entry["reason"],
                              None if step is None else str(step)))
    return records


@dataclass
class Difference:
    step: str
    description: str
    item: str
    docker: object
    berth: object
    recorded: str | None = None


@dataclass
class Outcome:
    scenario: Scenario
    verdict: str
    differences: list[Difference] = field(default_factory=list)
    detail: str = ""
    seconds: float = 0.0


def berth_not_implemented(docker: StepResult, berth: StepResult) -> str | None:
    """Returns berth's message when this step reached something berth does not serve yet: a
    501, or a route berth lacks (404 "page not found", 405) where Docker served the request."""
    if berth.status is None or docker.status == berth.status:
        return None
    if berth.status == 501:
        return f"501: {berth.message}"
    docker_served = docker.status is not None and docker.status < 400
    if docker_served and berth.status == 404 and berth.message == "page not found":
        return "404 page not found: berth has no route for this endpoint"
    if docker_served and berth.status == 405:
        return "405 method not allowed: berth has no route for this method"
    cli_step = "exit_code" in docker.items or "exit_code" in berth.items
    if cli_step and docker.status == 0 and NOT_IMPLEMENTED_TEXT.search(berth.message or ""):
        return f"CLI: {berth.message.splitlines()[-1]}"
    return None


def compare(scenario: Scenario, docker: Trace, berth: Trace, records: list[Record]) -> Outcome:
    if docker.broken or berth.broken:
        return Outcome(scenario, ERROR, detail=docker.broken or berth.broken)
    differences: list[Difference] = []
    for index in range(max(len(docker.steps), len(berth.steps))):
        docker_step = docker.steps[index] if index < len(docker.steps) else None
        berth_step = berth.steps[index] if index < len(berth.steps) else None
        if docker_step and berth_step:
            missing = berth_not_implemented(docker_step, berth_step)
            if missing:
                if any(d.recorded is None for d in differences):
                    return Outcome(scenario, DIFFER, differences,
                                   f"then step {berth_step.label} is not implemented in berth ({missing})")
                return Outcome(scenario, NOT_IMPLEMENTED, differences, missing)
        differences += _compare_step(scenario, docker_step, berth_step, records)
    if docker.cleanup_problems:
        return Outcome(scenario, ERROR, differences, "cleanup failed: " + "; ".join(docker.cleanup_problems))
    # berth failing to remove its own container is a berth bug, shown as a difference: Docker
    # removed the same containers.
    for problem in berth.cleanup_problems:
        differences.append(Difference("cleanup", "force-remove the scenario's containers", "cleanup",
                                      "<removed>", problem))
    if any(d.recorded is None for d in differences):
        return Outcome(scenario, DIFFER, differences)
    if differences:
        reasons = list(dict.fromkeys(d.recorded for d in differences))
        return Outcome(scenario, RECORDED, differences, "; ".join(reasons))
    return Outcome(scenario, AGREE)


def _compare_step(scenario: Scenario, docker: StepResult | None, berth: StepResult | None,
                  records: list[Record]) -> list[Difference]:
    if docker is None or berth is None:
        present = docker or berth
        side = "docker" if docker else "berth"
        return [Difference(present.label, present.description, "step", f"ran on {side} only" if docker else "<missing>",
                           "<missing>" if docker else f"ran on {side} only")]
    differences = []
    keys = list(docker.items) + [key for key in berth.items if key not in docker.items]
    if docker.items.get("status") != berth.items.get("status"):
        # When the status differs, headers and bodies differ as a consequence: show only the
        # status and what explains it.
        keys = [key for key in keys if key in STATUS_ITEMS]
    for key in keys:
        docker_value = docker.items.get(key, paths.MISSING)
        berth_value = berth.items.get(key, paths.MISSING)
        if _canonical(docker_value) == _canonical(berth_value):
            continue
        difference = Difference(docker.label, docker.description, key, display(docker_value), display(berth_value))
        for record in records:
            if record.matches(scenario.full_name, docker.label, key):
                record.used += 1
                difference.recorded = record.reason
                break
        differences.append(difference)
    return differences


def _canonical(value) -> str:
    return json.dumps(display(value), sort_keys=True, ensure_ascii=False)


def display(value):
    """Returns a JSON-ready copy of a value, with MISSING shown as `<missing>`."""
    if value is paths.MISSING:
        return "<missing>"
    if isinstance(value, list):
        return [display(item) for item in value]
    if isinstance(value, dict):
        return {key: display(item) for key, item in value.items()}
    return value
