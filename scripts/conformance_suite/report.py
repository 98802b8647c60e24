"""The console report and the results file that docs/compatibility.md is generated from."""

from __future__ import annotations

import difflib
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from .compare import AGREE, DIFFER, ERROR, NOT_IMPLEMENTED, RECORDED, VERDICTS, Difference, Outcome

NAME_WIDTH = 48
SHORT_VALUE = 150
MAX_DIFF_LINES = 40


def verdict_text(outcome: Outcome) -> str:
    if outcome.verdict == AGREE:
        return "agree"
    if outcome.verdict == DIFFER:
        return "DIFFER" + (f" ({outcome.detail})" if outcome.detail else "")
    if outcome.verdict == RECORDED:
        return f"differs (recorded: {_shorten(outcome.detail)})"
    if outcome.verdict == NOT_IMPLEMENTED:
        return f"berth: not implemented ({outcome.detail})"
    return f"ERROR: {outcome.detail}"


def _shorten(text: str, limit: int = 140) -> str:
    """Cuts a list of reasons for the console; the results file and the docs keep them whole."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def print_outcome(outcome: Outcome, verbose: bool, stream=sys.stdout) -> None:
    print(f"{outcome.scenario.full_name:<{NAME_WIDTH}} {verdict_text(outcome)}", file=stream)
    show_all = verbose or outcome.verdict in (DIFFER, ERROR)
    if not show_all:
        return
    for difference in outcome.differences:
        if difference.recorded and not verbose:
            continue
        for line in format_difference(difference):
            print("    " + line, file=stream)
    stream.flush()


def format_difference(difference: Difference) -> list[str]:
    """Formats a small diff of one item: Docker's side and berth's side."""
    tag = f" (recorded: {difference.recorded})" if difference.recorded else ""
    lines = [f"step {difference.step}: {difference.description}", f"  {difference.item}{tag}"]
    docker = json.dumps(difference.docker, ensure_ascii=False)
    berth = json.dumps(difference.berth, ensure_ascii=False)
    if len(docker) <= SHORT_VALUE and len(berth) <= SHORT_VALUE:
        return lines + [f"    - docker: {docker}", f"    + berth:  {berth}"]
    docker_lines = _lines(difference.docker)
    berth_lines = _lines(difference.berth)
    diff = list(difflib.unified_diff(docker_lines, berth_lines, "docker", "berth", n=1, lineterm=""))
    if len(diff) > MAX_DIFF_LINES:
        diff = diff[:MAX_DIFF_LINES] + [f"... {len(diff) - MAX_DIFF_LINES} more diff lines"]
    return lines + ["    " + line for line in diff]


def _lines(value) -> list[str]:
    if isinstance(value, str):
        return value.splitlines() or [""]
    return json.dumps(value, indent=1, ensure_ascii=False, sort_keys=True).splitlines()


def counts(outcomes: list[Outcome]) -> dict[str, int]:
    return {verdict: sum(1 for o in outcomes if o.verdict == verdict) for verdict in VERDICTS}


def summary_line(outcomes: list[Outcome]) -> str:
    count = counts(outcomes)
    return (f"agree {count[AGREE]}, differ {count[DIFFER]}, recorded {count[RECORDED]}, "
            f"not implemented {count[NOT_IMPLEMENTED]}, error {count[ERROR]} ({len(outcomes)} scenarios)")


def write_results(path: Path, outcomes: list[Outcome], docker_version: dict, berth_version: dict,
                  seconds: float, complete: bool) -> None:
    """Writes the run as JSON; `complete` is false for a run limited with --only."""
    data = {
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "complete": complete,
        "docker": {key: docker_version.get(key) for key in ("Version", "ApiVersion", "MinAPIVersion", "Os", "Arch")},
        "berth": {key: berth_version.get(key) for key in ("Version", "ApiVersion", "MinAPIVersion")},
        "counts": counts(outcomes),
        "scenarios": [
            {
                "name": o.scenario.full_name,
                "area": o.scenario.area,
                "summary": o.scenario.summary,
                "covers": o.scenario.covers,
                "verdict": o.verdict,
                "detail": o.detail,
                "seconds": round(o.seconds, 2),
                "differences": [
                    {"step": d.step, "description": d.description, "item": d.item, "docker": d.docker,
                     "berth": d.berth, "recorded": d.recorded}
                    for d in o.differences
                ],
            }
            for o in outcomes
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
