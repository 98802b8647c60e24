"""Runs one scenario against one engine and records what a client saw at each step (a trace),
then removes what the scenario created."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import tarfile
import time
import urllib.parse
from dataclasses import dataclass, field

from . import http, paths
from .engines import API_PREFIX, IMAGE, Engine
from .normalise import Normaliser, Rules
from .observe import FieldDefaults, error_message, observe_cli, observe_response
from .scenarios import MissingVariable, Scenario, ScenarioError, evaluate, fill

DEFAULT_TIMEOUT = 30.0
CLI_TIMEOUT = 60.0
# An `ambiguous_prefix` step creates containers until two ids share their first hex digit;
# with 16 digits, 17 containers always suffice.
MAX_PREFIX_CONTAINERS = 17


@dataclass
class StepResult:
    label: str
    description: str
    items: dict = field(default_factory=dict)
    # Raw facts the comparison needs to recognise "not implemented" on berth's side.
    status: int | None = None
    message: str = ""


@dataclass
class Trace:
    engine: str
    steps: list[StepResult] = field(default_factory=list)
    # Set when the engine could not be reached: the run is broken, not the scenario.
    broken: str | None = None
    # Containers or images the engine failed to remove after the scenario.
    cleanup_problems: list[str] = field(default_factory=list)


class Broken(Exception):
    """The engine stopped responding."""


class ScenarioRun:
    """The state of one scenario on one engine: variables, ids to clean up, pending requests."""

    def __init__(self, engine: Engine, scenario: Scenario, run_tag: str, rules: Rules, defaults: FieldDefaults,
                 literals: dict[str, str]) -> None:
        self.engine = engine
        self.scenario = scenario
        self.rules = rules
        self.defaults = defaults
        self.literals = literals
        # Zero-padded, so that no scenario's name is a prefix of another's.
        self.name = f"bconf-{run_tag}-{scenario.index:03d}"
        self.variables: dict[str, str] = {
            "image": IMAGE,
            "image_id": engine.image_id,
            "name": self.name,
        }
        self.container_ids: list[str] = []
        self.image_ids: list[str] = []
        self.pending: dict[str, tuple] = {}
        # Variables with short values, normalised only where they stand as a whole word.
        self.word_variables: set[str] = set()

    def normaliser(self, step: dict) -> Normaliser:
        known = {key: value for key, value in self.variables.items() if key != "name"}
        words = {self.variables[key]: f"<{key}>" for key in self.word_variables if key in self.variables}
        return Normaliser(self.rules, known, self.literals, shape_times=step.get("time_shape", False), words=words)

    def run(self) -> Trace:
        trace = Trace(self.engine.name)
        try:
            for number, step in enumerate(self.scenario.steps, 1):
                label = step.get("label", str(number))
                try:
                    trace.steps.append(self.run_step(label, step))
                except MissingVariable as missing:
                    trace.steps.append(StepResult(label, _describe(step), {
                        "error": f"variable {{{missing}}} is not set because an earlier step failed"}))
                    break
        except (Broken, ScenarioError) as err:
            trace.broken = str(err)
        finally:
            trace.cleanup_problems = self.cleanup()
        return trace

    def run_step(self, label: str, step: dict) -> StepResult:
        if "mark" in step:
            self.variables[step["mark"]] = f"{time.time():.6f}"
            return StepResult(label, f"mark {step['mark']}")
        if "docker" in step:
            return self.run_cli(label, step)
        if "ambiguous_prefix" in step:
            return self.create_shared_prefix(label, step)
        if "join" in step:
            return self.join(label, step)
        if "value" in step:
            expression = fill(step["value"], self.variables)
            return StepResult(label, f"value {step['value']}", {"value": evaluate(expression)})
        return self.run_call(label, step)

    def request_parts(self, step: dict) -> tuple[str, str, bytes | None, dict]:
        method, target = step["call"].split(" ", 1)
        target = fill(target, self.variables)
        if "query" in step:
            target += ("&" if "?" in target else "?") + encode_query(fill(step["query"], self.variables))
        # A path that names its own version (`/v1.24/_ping`) or none (`/_ping` with
        # `prefix = ""`) is sent as is; the others get the run's version prefix.
        versioned = re.match(r"/v\d", target) is not None
        path = target if versioned else step.get("prefix", API_PREFIX) + target
        headers = dict(fill(step.get("headers", {}), self.variables))
        body = None
        if "body" in step:
            body = json.dumps(fill(step["body"], self.variables)).encode()
        elif "raw_body" in step:
            body = fill(step["raw_body"], self.variables).encode()
        elif "tar_body" in step:
            body = build_tar(fill(step["tar_body"], self.variables))
            headers.setdefault("Content-Type", "application/x-tar")
        return method, path, body, headers

    def send(self, method: str, path: str, body: bytes | None, headers: dict, step: dict,
             pending: http.PendingResponse | None = None) -> http.Response:
        try:
            return http.request(
                self.engine.host, method, path, body=body, headers=headers,
                timeout=step.get("timeout", DEFAULT_TIMEOUT), upgrade=step.get("upgrade", False),
                send_after_upgrade=fill(step["send"], self.variables).encode() if "send" in step else None,
                close_write=step.get("close_write", False), pending=pending,
            )
        except http.ConnectionFailed as err:
            raise Broken(f"{self.engine.name}: {method} {path}: {err}") from err

    def run_call(self, label: str, step: dict) -> StepResult:
        method, path, body, headers = self.request_parts(step)
        if path.split("?")[0].endswith("/prune") and "label" not in urllib.parse.unquote(path):
            # A prune without a label filter removes every stopped object of the Docker Engine,
            # not only the suite's.
            raise ScenarioError(f"{self.scenario.full_name}: {method} {path} needs a label filter")
        description = f"{method} {path}"
        if "async" in step:
            return self.start_async(label, step, method, path, body, headers)
        poll = step.get("poll")
        attempts = poll.get("attempts", 50) if poll else 1
        response = None
        for attempt in range(attempts):
            response = self.send(method, path, body, headers, step)
            if not poll or _poll_satisfied(response, fill(poll, self.variables)):
                break
            if attempt + 1 < attempts:
                time.sleep(poll.get("interval", 0.1))
        result = self.observe(label, description, method, path, step, response)
        if poll and not _poll_satisfied(response, fill(poll, self.variables)):
            result.items["poll"] = f"condition not met after {attempts} attempts"
        return result

    def observe(self, label: str, description: str, method: str, path: str, step: dict,
                response: http.Response) -> StepResult:
        if method == "POST" and path.split("?")[0].endswith("/containers/create") and response.status == 201:
            self.container_ids.append(json.loads(response.body)["Id"])
        if method == "POST" and "/images/create" in path and response.status == 200:
            self._track_imported_image(response.body)
        self.save(step, response)
        normaliser = self.normaliser(step)
        items = observe_response(response, method, path, step, normaliser, self.defaults,
                                 lambda value: fill(value, self.variables))
        message = error_message(response.body) if response.status >= 400 else ""
        return StepResult(label, normaliser.text(description), items, response.status, message)

    def _track_imported_image(self, body: bytes) -> None:
        for line in body.decode(errors="replace").splitlines():
            try:
                status = json.loads(line).get("status", "")
            except json.JSONDecodeError:
                continue
            if isinstance(status, str) and status.startswith("sha256:"):
                self.image_ids.append(status)
                # Saved like a step variable, so messages naming the image normalise to it.
                self.variables["imported_image"] = status

    def save(self, step: dict, response: http.Response) -> None:
        if "save" not in step:
            return
        try:
            data = json.loads(response.body)
        except json.JSONDecodeError:
            return
        for variable, field_path in step["save"].items():
            value = paths.extract(data, field_path)
            if value is not paths.MISSING and value is not None:
                self.variables[variable] = value if isinstance(value, str) else json.dumps(value)

    def start_async(self, label: str, step: dict, method: str, path: str, body: bytes | None,
                    headers: dict) -> StepResult:
        """Starts a request in the background and returns once its reply head has arrived,
        so that the next step (a start, for a wait or an attach) comes after it."""
        timeout = step.get("timeout", DEFAULT_TIMEOUT)
        thread, pending = http.start_request(
            host=self.engine.host, method=method, path=path, body=body, headers=headers, timeout=timeout,
            upgrade=step.get("upgrade", False),
            send_after_upgrade=fill(step["send"], self.variables).encode() if "send" in step else None,
            close_write=step.get("close_write", False),
        )
        pending.headers_received.wait(timeout)
        self.pending[step["async"]] = (thread, pending, method, path, timeout)
        return StepResult(label, self.normaliser(step).text(f"{method} {path} (in the background)"))

    def join(self, label: str, step: dict) -> StepResult:
        thread, pending, method, path, timeout = self.pending.pop(step["join"])
        description = f"{method} {path} (joined)"
        if not pending.done.wait(step.get("timeout", timeout)):
            return StepResult(label, description, {"status": "<no reply in time>"})
        if pending.error is not None:
            if isinstance(pending.error, http.ConnectionFailed):
                raise Broken(f"{self.engine.name}: {description}: {pending.error}")
            raise pending.error
        return self.observe(label, description, method, path, step, pending.response)

    def run_cli(self, label: str, step: dict) -> StepResult:
        args = fill(step["docker"], self.variables)
        description = "docker " + " ".join(args)
        try:
            result = subprocess.run(
                ["docker", *args], env=self.engine.cli_env(), input=fill(step.get("stdin", ""), self.variables),
                capture_output=True, text=True, timeout=step.get("timeout", CLI_TIMEOUT),
            )
            exit_code, stdout, stderr = result.returncode, result.stdout, result.stderr
        except subprocess.TimeoutExpired as err:
            exit_code, stdout, stderr = "<timed out>", _text(err.stdout), _text(err.stderr)
        except FileNotFoundError as err:
            raise Broken(f"the docker CLI is not installed: {err}") from err
        for variable, source in step.get("save", {}).items():
            if source in ("stdout", "stderr"):
                self.variables[variable] = (stdout if source == "stdout" else stderr).strip()
        normaliser = self.normaliser(step)
        items = observe_cli(exit_code, stdout, stderr, step, normaliser)
        status = exit_code if isinstance(exit_code, int) else None
        return StepResult(label, normaliser.text(description), items, status, stderr.strip())

    def create_shared_prefix(self, label: str, step: dict) -> StepResult:
        """Creates containers until two ids share their first hex digit and saves that digit
        in the named variable, for the "ambiguous prefix" errors."""
        body = json.dumps(fill(step.get("body", {"Image": IMAGE, "Cmd": ["true"]}), self.variables)).encode()
        first_digits: dict[str, str] = {}
        for number in range(MAX_PREFIX_CONTAINERS):
            path = f"{API_PREFIX}/containers/create?name={self.name}-p{number}"
            response = self.send("POST", path, body, {}, step)
            if response.status != 201:
                return StepResult(label, f"create containers until two ids share a prefix",
                                  {"status": response.status, "message": response.body.decode(errors="replace")})
            container_id = json.loads(response.body)["Id"]
            self.container_ids.append(container_id)
            if container_id[0] in first_digits:
                self.variables[step["ambiguous_prefix"]] = container_id[0]
                self.word_variables.add(step["ambiguous_prefix"])
                return StepResult(label, "create containers until two ids share a prefix", {"shared prefix found": True})
            first_digits[container_id[0]] = container_id
        return StepResult(label, "create containers until two ids share a prefix", {"shared prefix found": False})

    def cleanup(self) -> list[str]:
        """Force-removes the scenario's containers by id (those it created and any named with
        its prefix) and the images it imported."""
        problems = []
        try:
            ids = list(dict.fromkeys(self.container_ids + self.engine.containers_named(self.name)))
        except Exception as err:  # the engine may be the reason the scenario failed
            return [f"{self.engine.name}: listing the scenario's containers failed: {err}"]
        for container_id in ids:
            error = self.engine.force_remove(container_id)
            if error:
                problems.append(f"{self.engine.name}: removing container {container_id[:12]} failed: {error}")
        # berth's images go with its state directory at the end of the run.
        if self.engine.name == "docker":
            problems += self._remove_docker_images()
        for host_path in fill(self.scenario.remove_paths, self.variables):
            shutil.rmtree(host_path, ignore_errors=True)
        for thread, pending, *_ in self.pending.values():
            thread.join(5)
        return problems

    def _remove_docker_images(self) -> list[str]:
        """Removes the images the scenario imported (by id) and the tags it added to the suite's
        repositories (berth-conformance/...:<scenario name>), and nothing else."""
        problems = []
        filters = urllib.parse.quote(json.dumps({"reference": [f"berth-conformance/*:{self.name}*"]}))
        tags = [tag for image in self.engine.json("GET", f"/images/json?filters={filters}") or []
                for tag in image.get("RepoTags") or [] if tag.startswith("berth-conformance/")
                and tag.split(":")[-1].startswith(self.name)]
        for reference in tags + self.image_ids:
            response = self.engine.call("DELETE", f"/images/{reference}", timeout=60)
            if response.status not in (200, 404):
                problems.append(f"docker: removing image {reference} failed: {response.status} {response.body[:200]!r}")
        return problems


def _poll_satisfied(response: http.Response, poll: dict) -> bool:
    if "status" in poll and response.status != poll["status"]:
        return False
    if "contains" in poll and poll["contains"].encode() not in response.body:
        return False
    return True


def _describe(step: dict) -> str:
    for key in ("call", "docker", "join", "mark", "ambiguous_prefix", "value"):
        if key in step:
            return f"{key} {step[key]}"
    return "step"


def _text(value) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def encode_query(query: dict) -> str:
    """Encodes a step's `query` table: a table becomes JSON (`filters`), a list repeats the
    parameter (`changes`), anything else is sent as text."""
    pairs = []
    for key, value in query.items():
        if isinstance(value, dict):
            pairs.append((key, json.dumps(value, separators=(",", ":"))))
        elif isinstance(value, list):
            pairs += [(key, str(item)) for item in value]
        else:
            pairs.append((key, str(value)))
    return urllib.parse.urlencode(pairs)


def build_tar(files: dict[str, str]) -> bytes:
    """Builds a tar of regular files (name -> text content), mode 0644, for archive uploads."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1_700_000_000
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
