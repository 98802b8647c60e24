#!/usr/bin/env python3
"""Differential conformance suite: runs the scenarios of conformance/scenarios against the
Docker Engine on this machine and against a berth daemon started for the run, and prints per
scenario whether the two agree.

Exit status: 0 when every difference is recorded in conformance/known-differences.toml,
1 when there are unrecorded differences, 2 when the run itself broke (no Docker Engine,
berth did not start or stopped responding, cleanup failed, invalid scenario files).

Python 3.11 standard library only. See conformance/README.md for the scenario language.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import fnmatch
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conformance_suite import compare, docs, engines, report, scenarios  # noqa: E402
from conformance_suite.normalise import Rules  # noqa: E402
from conformance_suite.observe import FieldDefaults  # noqa: E402
from conformance_suite.runner import ScenarioRun  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
EXIT_DIFFER = 1
EXIT_BROKEN = 2


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docker-host", default="unix:///var/run/docker.sock",
                        help="the Docker Engine used as the oracle (default: %(default)s)")
    parser.add_argument("--berth", type=Path, default=REPO / "target/release/berth", help="the berth binary")
    parser.add_argument("--busybox", type=Path, default=REPO / "target/busybox.tar",
                        help="root filesystem tar imported into both engines")
    parser.add_argument("--scenarios", type=Path, default=REPO / "conformance/scenarios",
                        help="directory of scenario files (*.toml)")
    parser.add_argument("--differences", type=Path, default=REPO / "conformance/known-differences.toml",
                        help="recorded deliberate differences")
    parser.add_argument("--results", type=Path, default=REPO / "target/conformance/results.json",
                        help="where the results of the run are written as JSON")
    parser.add_argument("--docs", type=Path, default=REPO / "docs/compatibility.md",
                        help="the compatibility page generated from a complete run")
    parser.add_argument("--notes", type=Path, default=REPO / "conformance/notes.toml",
                        help="hand-written notes merged into the compatibility page")
    parser.add_argument("--only", action="append", default=[], metavar="GLOB",
                        help="run only scenarios whose AREA/NAME matches; repeatable (the docs are not regenerated)")
    parser.add_argument("--docs-only", action="store_true",
                        help="regenerate the compatibility page from the last results file and exit")
    parser.add_argument("--keep", action="store_true", help="keep berth's state directory after the run")
    parser.add_argument("-v", "--verbose", action="store_true", help="also show recorded differences")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.docs_only:
        docs.generate(args.results, args.notes, args.docs)
        print(f"wrote {args.docs} from {args.results}")
        return 0
    try:
        suite = scenarios.load(args.scenarios)
        records = compare.load_records(args.differences)
        rules = Rules(REPO / "conformance/normalisations.toml")
        defaults = FieldDefaults(REPO / "conformance/fields.toml")
    except (scenarios.ScenarioError, OSError, ValueError) as err:
        print(f"conformance: invalid suite files: {err}", file=sys.stderr)
        return EXIT_BROKEN
    if args.only:
        suite = [s for s in suite if any(fnmatch.fnmatchcase(s.full_name, pattern) for pattern in args.only)]
        if not suite:
            print(f"conformance: no scenario matches {args.only}", file=sys.stderr)
            return EXIT_BROKEN
    for path, description in ((args.berth, "berth binary"), (args.busybox, "busybox tar")):
        if not path.exists():
            print(f"conformance: the {description} {path} is missing: run `make build target/busybox.tar`", file=sys.stderr)
            return EXIT_BROKEN
    if shutil.which("docker") is None:
        print("conformance: the docker CLI is not installed; CLI steps need it", file=sys.stderr)
        return EXIT_BROKEN

    docker_config = tempfile.mkdtemp(prefix="bc-cli-")
    try:
        return run(args, suite, records, rules, defaults, docker_config)
    finally:
        shutil.rmtree(docker_config, ignore_errors=True)


def run(args, suite, records, rules, defaults, docker_config: str) -> int:
    try:
        docker = engines.check_docker(args.docker_host, docker_config)
    except engines.EngineError as err:
        print(f"conformance: {err}.\nThis suite compares berth with a real Docker Engine and cannot run "
              f"without one: start dockerd or pass --docker-host.", file=sys.stderr)
        return EXIT_BROKEN
    daemon = engines.BerthDaemon(args.berth, docker_config)
    outcomes: list[compare.Outcome] = []
    broken: list[str] = []
    started = time.monotonic()
    docker_image_imported = False
    try:
        engines.import_into_docker(docker, args.busybox)
        docker_image_imported = True
        berth = daemon.start()
        daemon.import_image(args.busybox)
        docker_info = docker.json("GET", "/info")
        literals = {
            docker.host.removeprefix("unix://"): "<socket>", daemon.engine.host.removeprefix("unix://"): "<socket>",
            str(daemon.base): "<state-dir>", docker_info.get("DockerRootDir", "/var/lib/docker"): "<state-dir>",
        }
        print(f"Docker Engine {docker.version.get('Version')} (API {docker.version.get('ApiVersion')}) at "
              f"{docker.host}\nberth {berth.version.get('Version')} (API {berth.version.get('ApiVersion')}) at "
              f"{berth.host}, state in {daemon.base}\n{len(suite)} scenarios; requests use {engines.API_PREFIX}\n")
        run_tag = secrets.token_hex(3)
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            for scenario in suite:
                scenario_started = time.monotonic()
                docker_run = ScenarioRun(docker, scenario, run_tag, rules, defaults, literals)
                berth_run = ScenarioRun(berth, scenario, run_tag, rules, defaults, literals)
                docker_trace, berth_trace = pool.map(lambda r: r.run(), (docker_run, berth_run))
                outcome = compare.compare(scenario, docker_trace, berth_trace, records)
                outcome.seconds = time.monotonic() - scenario_started
                outcomes.append(outcome)
                report.print_outcome(outcome, args.verbose)
                if outcome.verdict == compare.ERROR and not daemon.alive():
                    broken.append(f"berth exited during {scenario.full_name}:\n{daemon.log_tail()}")
                    break
    except engines.EngineError as err:
        broken.append(str(err))
    except KeyboardInterrupt:
        broken.append("interrupted")
    finally:
        problems, warnings = daemon.stop(keep_base=args.keep)
        broken += problems
        if docker_image_imported:
            error = engines.remove_docker_image(docker)
            if error:
                broken.append(error)
    seconds = time.monotonic() - started

    complete = not args.only and not broken and len(outcomes) == len(suite)
    # A partial run (--only, or a broken one) must not replace the results the docs come from.
    results_path = args.results if complete else args.results.with_name(args.results.stem + "-partial.json")
    if outcomes:
        report.write_results(results_path, outcomes, docker.version, daemon.engine.version, seconds, complete)
    if complete:
        docs.generate(args.results, args.notes, args.docs)
        for record in records:
            if record.used == 0:
                print(f"note: recorded difference no longer seen: scenario {record.scenario!r}, "
                      f"items {record.items} ({record.reason})")
    print(f"\n{report.summary_line(outcomes)} in {seconds:.0f} s")
    print(f"results: {results_path}" + (f"; compatibility page: {args.docs}" if complete else ""))
    for warning in warnings:
        print(f"conformance: berth bug at shutdown: {warning}", file=sys.stderr)
    for problem in broken:
        print(f"conformance: run broken: {problem}", file=sys.stderr)
    if broken or any(o.verdict == compare.ERROR for o in outcomes):
        return EXIT_BROKEN
    if any(o.verdict == compare.DIFFER for o in outcomes):
        return EXIT_DIFFER
    return 0


if __name__ == "__main__":
    sys.exit(main())
