"""The two engines under comparison: the Docker Engine oracle and a berth daemon started for
this run, each reached over a unix socket and through the docker CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from . import http

API_PREFIX = "/v1.41"
"""Docker 20.10 serves API 1.41 at most; both engines get the same prefix so replies compare."""

IMAGE_REPO = "berth-conformance/busybox"
IMAGE_TAG = "latest"
IMAGE = f"{IMAGE_REPO}:{IMAGE_TAG}"


class EngineError(Exception):
    """An engine could not be prepared, reached or cleaned up: the run itself is broken."""


@dataclass
class Engine:
    """One side of the comparison."""

    name: str
    host: str
    docker_config: str
    image_id: str = ""
    version: dict = field(default_factory=dict)

    def call(self, method: str, path: str, body: bytes | None = None, timeout: float = 30.0,
             headers: dict[str, str] | None = None) -> http.Response:
        return http.request(self.host, method, API_PREFIX + path, body=body, timeout=timeout, headers=headers)

    def cli_env(self) -> dict[str, str]:
        """Returns the environment for docker CLI steps. The API version is pinned to 1.41, so
        the CLI speaks the same version to both sides (it would negotiate 1.47 with berth)."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("DOCKER_")}
        env.update(DOCKER_CONFIG=self.docker_config, DOCKER_API_VERSION="1.41", DOCKER_HOST=self.host)
        return env

    def json(self, method: str, path: str, body=None, timeout: float = 30.0):
        data = None if body is None else json.dumps(body).encode()
        response = self.call(method, path, data, timeout)
        if response.status >= 400:
            raise EngineError(f"{self.name}: {method} {path} returned {response.status}: {response.body[:300]!r}")
        return json.loads(response.body) if response.body.strip() else None

    def containers_named(self, prefix: str) -> list[str]:
        """Ids of containers whose name starts with `prefix` (the run's own containers)."""
        filters = urllib.parse.quote(json.dumps({"name": [f"^/{prefix}"]}))
        listed = self.json("GET", f"/containers/json?all=1&filters={filters}")
        return [entry["Id"] for entry in listed if any(n.startswith(f"/{prefix}") for n in entry.get("Names", []))]

    def force_remove(self, container_id: str, attempts: int = 30) -> str | None:
        """Removes one container by id; returns an error text, or None when it is gone.

        A 409 is retried (up to `attempts` times, 0.1 s apart), because berth returns 409 for a
        forced remove of a container whose process is exiting at that moment. The
        lifecycle/remove-force-just-exited scenario reports that on its own.
        """
        response = None
        for attempt in range(attempts):
            try:
                response = self.call("DELETE", f"/containers/{container_id}?force=1", timeout=60)
            except http.ConnectionFailed as err:
                return str(err)
            if response.status in (204, 404):
                return None
            if response.status != 409:
                break
            time.sleep(0.1)
        return f"{response.status} {response.body[:200]!r}"


def check_docker(host: str, docker_config: str) -> Engine:
    """Checks that a Docker Engine responds at `host` and returns it. Raises EngineError with a
    clear message when none does."""
    engine = Engine("docker", host, docker_config)
    try:
        ping = engine.call("GET", "/_ping", timeout=5)
    except (http.ConnectionFailed, ValueError) as err:
        raise EngineError(f"no Docker Engine is reachable at {host} ({err})") from err
    if ping.status != 200:
        raise EngineError(f"the Docker Engine at {host} returned {ping.status} for /_ping: {ping.body[:200]!r}")
    engine.version = engine.json("GET", "/version", timeout=10)
    if "berth" in json.dumps(engine.version.get("Platform", {})).lower():
        raise EngineError(f"{host} is a berth daemon, not Docker: point --docker-host at a Docker Engine")
    return engine


def import_into_docker(engine: Engine, busybox_tar: Path) -> None:
    """Imports the busybox tar as IMAGE with `docker import` and records its id. An image of
    that name left by an earlier run is ours and is reused."""
    existing = engine.call("GET", f"/images/{IMAGE}/json", timeout=10)
    if existing.status == 200:
        engine.image_id = json.loads(existing.body)["Id"]
        return
    result = subprocess.run(
        ["docker", "import", str(busybox_tar), IMAGE],
        env=engine.cli_env(), capture_output=True, text=True, timeout=120,
    )
    if result.returncode != 0:
        raise EngineError(f"docker import {busybox_tar} {IMAGE} failed: {result.stderr.strip()}")
    engine.image_id = result.stdout.strip()


def remove_docker_image(engine: Engine) -> str | None:
    """Removes the suite's image reference from Docker (the image too when no other tag uses
    it); returns an error text or None."""
    response = engine.call("DELETE", f"/images/{IMAGE}", timeout=60)
    if response.status in (200, 404):
        return None
    return f"DELETE /images/{IMAGE} returned {response.status}: {response.body[:200]!r}"


class BerthDaemon:
    """A berth daemon started for one run, with its state under a fresh short directory."""

    def __init__(self, binary: Path, docker_config: str, cgroup_parent: str = "berth-conformance") -> None:
        self.binary = binary
        self.cgroup_parent = cgroup_parent
        # Socket paths must stay under 108 bytes, so the base directory is short.
        self.base = Path(tempfile.mkdtemp(prefix="bc-", dir="/tmp"))
        self.socket = self.base / "berth.sock"
        self.log_path = self.base / "berth.log"
        self.engine = Engine("berth", f"unix://{self.socket}", docker_config)
        self.process: subprocess.Popen | None = None

    def start(self, ready_timeout: float = 20.0) -> Engine:
        # berth starts its monitors by running its own executable again, so a rebuild of
        # target/release/berth during the run would break every later start: run a copy.
        binary = self.base / "berth"
        shutil.copy2(self.binary, binary)
        command = [
            str(binary), "--root", str(self.base / "root"), "--exec-root", str(self.base / "run"),
            "--cgroup-parent", self.cgroup_parent, "-H", self.engine.host,
        ]
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EngineError(f"berth exited with {self.process.returncode} while starting:\n{self.log_tail()}")
            try:
                if self.engine.call("GET", "/_ping", timeout=2).status == 200:
                    self.engine.version = self.engine.json("GET", "/version")
                    return self.engine
            except http.ConnectionFailed:
                pass
            time.sleep(0.05)
        raise EngineError(f"berth did not respond to /_ping within {ready_timeout:.0f} s:\n{self.log_tail()}")

    def import_image(self, busybox_tar: Path) -> None:
        query = urllib.parse.urlencode({"fromSrc": "-", "repo": IMAGE_REPO, "tag": IMAGE_TAG})
        response = self.engine.call("POST", f"/images/create?{query}", body=busybox_tar.read_bytes(), timeout=120,
                                    headers={"Content-Type": "application/x-tar"})
        if response.status != 200:
            raise EngineError(f"importing {busybox_tar} into berth failed: {response.status} {response.body[:300]!r}")
        self.engine.image_id = json.loads(response.body.splitlines()[-1])["status"]

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, keep_base: bool = False) -> tuple[list[str], list[str]]:
        """Force-removes berth's containers, stops berth by its pid and checks that no mounts,
        processes or cgroups of this run are left. Returns the problems (something is left on
        the host) and the warnings (berth failed to remove a container, a berth bug that
        leaves nothing behind once its state directory is gone)."""
        problems: list[str] = []
        warnings: list[str] = []
        if self.alive():
            try:
                for entry in self.engine.json("GET", "/containers/json?all=1") or []:
                    error = self.engine.force_remove(entry["Id"])
                    if error:
                        warnings.append(f"berth could not remove container {entry['Id'][:12]}: {error}")
            except (EngineError, http.ConnectionFailed) as err:
                warnings.append(f"listing berth's containers failed: {err}")
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                problems.append(f"berth (pid {self.process.pid}) did not exit 15 s after SIGTERM; sent SIGKILL")
                self.process.kill()
                self.process.wait(timeout=15)
        problems += self._leftovers()
        if not problems and not keep_base:
            subprocess.run(["rm", "-rf", "--one-file-system", str(self.base)], check=False, timeout=60)
            # The parent cgroups runc created for this run; rmdir removes only empty ones.
            for cgroup in Path("/sys/fs/cgroup").glob(f"*/{self.cgroup_parent}"):
                try:
                    cgroup.rmdir()
                except OSError:
                    pass
        return problems, warnings

    def _leftovers(self) -> list[str]:
        problems = []
        base = str(self.base)
        with open("/proc/self/mountinfo") as mountinfo:
            mounts = [line.split()[4] for line in mountinfo if line.split()[4].startswith(base + "/")]
        if mounts:
            problems.append(f"mounts left under {base}: {', '.join(mounts)}")
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                command_line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if base in command_line:
                problems.append(f"process {entry.name} of this run is still running: {command_line.strip()}")
        cgroups = [str(p) for p in Path("/sys/fs/cgroup").glob(f"*/{self.cgroup_parent}/*") if p.is_dir()]
        cgroups += [str(p) for p in Path("/sys/fs/cgroup").glob(f"{self.cgroup_parent}/*") if p.is_dir()]
        if cgroups:
            problems.append(f"cgroups left under {self.cgroup_parent}: {', '.join(sorted(cgroups)[:5])}")
        return problems
