#!/usr/bin/env python3
"""Benchmark berth against bare runc: container lifecycle, log throughput and memory.

Starts a private berth daemon under a fresh /tmp/bb-XXXX directory, imports the busybox
image and measures:
  1. create/start/wait/remove cycles through the API on one keep-alive connection, against
     the same number of bare `runc run` calls of an equivalent bundle;
  2. the speed of `GET /containers/{id}/logs` over 50 MB of 100-byte lines;
  3. the resident memory (VmRSS) of the idle daemon and of one container monitor.
It prints a short report and removes everything it started, even on failure. It reports
figures against targets, and a missed target does not change its exit code. It exits non-zero when a step fails,
when the logs payload has the wrong size, or when something could not be cleaned up.

Usage: python3 scripts/bench.py --berth target/release/berth --busybox target/busybox.tar
Needs root, runc on PATH (or --runc) and Python 3.11 (standard library only).
"""

import argparse
import http.client
import json
import math
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback

LIFECYCLE_TARGET_RATIO = 1.3
LOGS_TARGET_MB_PER_S = 300.0

# The logs container prints LOG_LINES lines of 99 characters plus a newline: 50 MiB in total.
LOG_LINE_TEXT = ("0123456789" * 10)[:99]
LOG_LINES = 524_288
LOG_PAYLOAD_BYTES = LOG_LINES * (len(LOG_LINE_TEXT) + 1)
MIB = 1024 * 1024
# The export benchmark fills a container with EXPORT_BYTES of random data in files of
# EXPORT_FILE_BYTES each.
EXPORT_BYTES = 200 * MIB
EXPORT_FILE_BYTES = 10 * MIB
EXPORT_ROUNDS = 5
BERTH_STEP_NAMES = ["create", "start", "wait", "remove"]

# Timeouts in seconds. An HTTP timeout bounds each socket read, so a stalled daemon fails the
# run instead of hanging it.
HTTP_TIMEOUT = 30.0
LOGS_CONTAINER_TIMEOUT = 300.0
LOGS_READ_TIMEOUT = 120.0
DAEMON_START_TIMEOUT = 15.0
DAEMON_STOP_TIMEOUT = 10.0
RUNC_TIMEOUT = 60.0
POLL_INTERVAL = 0.02

# The docker-multiplexed stream header: stream type (1 stdout, 2 stderr), three zero bytes,
# then the payload size as a big-endian u32.
FRAME_HEADER = struct.Struct(">BxxxI")


class BenchError(Exception):
    """A benchmark step failed. The message names the step and the reason."""


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTP/1.1 connection over a unix socket that counts how often it (re)connects."""

    def __init__(self, socket_path, timeout=HTTP_TIMEOUT):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path
        self.connect_count = 0

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self.connect_count += 1


class ApiClient:
    """Sends Docker API requests over one persistent connection and reads every body fully."""

    def __init__(self, socket_path):
        self.connection = UnixHTTPConnection(socket_path)

    def set_timeout(self, seconds):
        """Set the timeout of each socket operation, on the open socket and on reconnects."""
        self.connection.timeout = seconds
        if self.connection.sock is not None:
            self.connection.sock.settimeout(seconds)

    def send(self, method, path, body=None, content_type="application/json", timeout=HTTP_TIMEOUT):
        """Send one request and return the response with its headers read but its body not.

        The caller must read the body fully before the next request on this connection.
        """
        self.set_timeout(timeout)
        headers = {"Content-Type": content_type} if body is not None else {}
        try:
            self.connection.request(method, path, body=body, headers=headers)
            return self.connection.getresponse()
        except (OSError, http.client.HTTPException) as err:
            # A broken connection cannot carry another request, so close it and let the next
            # call reconnect.
            self.connection.close()
            raise BenchError(f"{method} {path} failed: {err!r}") from err

    def call(self, method, path, expected_status, body=None, content_type="application/json",
             timeout=HTTP_TIMEOUT):
        """Send one request, read the whole body and return it.

        Raise BenchError unless the status is expected_status.
        """
        response = self.send(method, path, body, content_type, timeout)
        try:
            data = response.read()
        except (OSError, http.client.HTTPException) as err:
            self.connection.close()
            raise BenchError(f"{method} {path}: reading the body failed: {err!r}") from err
        if response.status != expected_status:
            text = data[:500].decode("utf-8", "replace").strip()
            raise BenchError(f"{method} {path}: expected status {expected_status}, got {response.status}: {text}")
        return data

    def call_json(self, method, path, expected_status, payload=None, timeout=HTTP_TIMEOUT):
        body = None if payload is None else json.dumps(payload).encode()
        data = self.call(method, path, expected_status, body=body, timeout=timeout)
        try:
            return json.loads(data)
        except ValueError as err:
            raise BenchError(f"{method} {path}: the body is not JSON: {data[:200]!r}") from err

    def close(self):
        self.connection.close()


class Containers:
    """Creates and removes berth containers, and tracks the ids of those not yet removed."""

    def __init__(self, api):
        self.api = api
        self.live_ids = set()

    def create(self, config):
        reply = self.api.call_json("POST", "/containers/create", 201, config)
        container_id = reply.get("Id")
        if not container_id:
            raise BenchError(f"POST /containers/create returned no Id: {reply}")
        self.live_ids.add(container_id)
        return container_id

    def start(self, container_id):
        self.api.call("POST", f"/containers/{container_id}/start", 204)

    def wait(self, container_id, timeout=HTTP_TIMEOUT):
        """Wait for the container to exit and raise unless its exit code is 0."""
        reply = self.api.call_json("POST", f"/containers/{container_id}/wait", 200, timeout=timeout)
        if reply.get("StatusCode") != 0:
            raise BenchError(f"container {container_id[:12]} exited with {reply}, expected StatusCode 0")

    def remove(self, container_id, force=False):
        query = "?force=1" if force else ""
        self.api.call("DELETE", f"/containers/{container_id}{query}", 204)
        self.live_ids.discard(container_id)


def time_tar(directory):
    """Return the size of `tar -c` of directory and the seconds it took, reading tar's output
    here: GNU tar skips reading file data when it writes to /dev/null."""
    started = time.perf_counter()
    tar = subprocess.Popen(["tar", "-cf", "-", "-C", directory, "."], stdout=subprocess.PIPE)
    size = 0
    while chunk := tar.stdout.read(1 << 20):
        size += len(chunk)
    if tar.wait(timeout=RUNC_TIMEOUT) != 0:
        raise BenchError(f"tar -c of {directory} failed with exit code {tar.returncode}")
    return size, time.perf_counter() - started


def percentile(values, fraction):
    """Return the nearest-rank percentile of values (fraction 0.9 for p90)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def read_vm_rss_kib(pid):
    """Return VmRSS of a process in KiB, from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError(f"/proc/{pid}/status has no VmRSS line (is {pid} a kernel thread or a zombie?)")


def read_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            raw = file.read()
    except OSError:
        return []
    return [arg.decode("utf-8", "replace") for arg in raw.split(b"\0")[:-1]]


def all_pids():
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def find_monitor_pids(berth_binary, base):
    """Return pids of monitors of the daemon under base: their cmdline is [berth binary,
    "monitor", ...] with an argument under base. This includes the daemon's spare monitor."""
    binary = os.path.realpath(berth_binary)
    found = []
    for pid in all_pids():
        args = read_cmdline(pid)
        if (len(args) >= 3 and args[1] == "monitor" and any(a.startswith(base + "/") for a in args[2:])
                and os.path.realpath(args[0]) == binary):
            found.append(pid)
    return found


def process_exists(pid):
    return os.path.exists(f"/proc/{pid}")


def is_runc_process(pid):
    args = read_cmdline(pid)
    return bool(args) and os.path.basename(args[0]) == "runc"


def child_pids(parent_pid):
    children = []
    for pid in all_pids():
        try:
            with open(f"/proc/{pid}/stat") as file:
                stat = file.read()
        except OSError:
            continue
        # The command name in parentheses may contain spaces and ")", so split after the last ")".
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == parent_pid:
            children.append(pid)
    return children


def mounts_under(base):
    """Return the mount points under base, deepest first, from /proc/self/mountinfo."""
    points = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields = line.split(" ")
            # mountinfo escapes space, tab, newline and backslash as octal (\040 and so on).
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
            if point == base or point.startswith(base + "/"):
                points.append(point)
    return sorted(set(points), key=len, reverse=True)


def first_line(command):
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"unavailable ({err})"
    lines = (result.stdout or result.stderr).splitlines()
    return lines[0] if lines else f"no output (exit {result.returncode})"


def format_ms(seconds):
    return f"{seconds * 1000:8.1f} ms"


class Bench:
    """One benchmark run: owns the base directory, the daemon and everything started in it."""

    def __init__(self, args):
        self.args = args
        self.berth = os.path.abspath(args.berth)
        self.busybox = os.path.abspath(args.busybox)
        self.runc = shutil.which(args.runc) or args.runc
        self.base = tempfile.mkdtemp(prefix="bb-", dir="/tmp")
        self.socket_path = os.path.join(self.base, "berth.sock")
        self.runc_bare_root = os.path.join(self.base, "runc-bare")
        self.daemon = None
        self.daemon_command = None
        self.daemon_log = None
        self.api = None
        self.containers = None
        self.bare_ids = set()
        self.results = {}

    # Daemon and image

    def start_daemon(self):
        self.daemon_command = [
            self.berth,
            "--root", os.path.join(self.base, "root"),
            "--exec-root", os.path.join(self.base, "run"),
            "--cgroup-parent", self.args.cgroup_parent,
            "-H", f"unix://{self.socket_path}",
        ]
        self.daemon_log = open(os.path.join(self.base, "daemon.log"), "wb")
        # A session of its own, so Ctrl-C on the benchmark does not stop the daemon before the
        # clean-up has removed its containers.
        self.daemon = subprocess.Popen(self.daemon_command, stdin=subprocess.DEVNULL,
                                       stdout=self.daemon_log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        started = time.monotonic()
        deadline = started + DAEMON_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                raise BenchError(f"berth exited during start-up with code {self.daemon.returncode}; "
                                 f"log:\n{self.daemon_log_tail()}")
            if os.path.exists(self.socket_path) and self.ping():
                self.api = ApiClient(self.socket_path)
                self.containers = Containers(self.api)
                return time.monotonic() - started
            time.sleep(POLL_INTERVAL)
        raise BenchError(f"berth did not return 200 for GET /_ping within {DAEMON_START_TIMEOUT:.0f} s; "
                         f"log:\n{self.daemon_log_tail()}")

    def ping(self):
        """Return whether GET /_ping returns 200, on a short-lived connection."""
        connection = UnixHTTPConnection(self.socket_path, timeout=2)
        try:
            connection.request("GET", "/_ping")
            response = connection.getresponse()
            response.read()
            return response.status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()

    def daemon_log_tail(self, lines=20):
        try:
            with open(os.path.join(self.base, "daemon.log"), errors="replace") as log:
                return "".join(log.readlines()[-lines:])
        except OSError as err:
            return f"(cannot read the daemon log: {err})"

    def import_image(self):
        with open(self.busybox, "rb") as tar:
            data = tar.read()
        self.api.call("POST", "/images/create?fromSrc=-&repo=busybox&tag=latest", 200,
                      body=data, content_type="application/x-tar", timeout=120)

    # Lifecycle

    def prepare_bare_bundle(self):
        """Write a runc bundle that runs `true` in the busybox rootfs and return its path.

        The config is `runc spec` with the edits below, close to what berth generates.
        """
        bundle = os.path.join(self.base, "bundle")
        rootfs = os.path.join(bundle, "rootfs")
        os.makedirs(rootfs)

        with tarfile.open(self.busybox) as tar:
            # Our own tar: keep its owners, modes and absolute symlinks (/bin/busybox) as they
            # are. Python before 3.11.4 has no filter argument and always extracts this way.
            if hasattr(tarfile, "fully_trusted_filter"):
                tar.extractall(rootfs, filter="fully_trusted")
            else:
                tar.extractall(rootfs)

        result = subprocess.run([self.runc, "spec"], cwd=bundle, capture_output=True, text=True, timeout=RUNC_TIMEOUT)
        if result.returncode != 0:
            raise BenchError(f"`runc spec` failed with exit code {result.returncode}: {result.stderr.strip()}")

        config_path = os.path.join(bundle, "config.json")
        with open(config_path) as file:
            config = json.load(file)
        config["process"]["args"] = ["true"]
        config["process"]["terminal"] = False
        config["root"] = {"path": rootfs, "readonly": False}

        # runc fails when the open-file limit is above our hard limit and we lack
        # CAP_SYS_RESOURCE to raise it, as root does in some sandboxes.
        _, hard_limit = resource.getrlimit(resource.RLIMIT_NOFILE)
        for rlimit in config["process"].get("rlimits", []):
            if rlimit.get("type") == "RLIMIT_NOFILE" and hard_limit != resource.RLIM_INFINITY:
                rlimit["hard"] = min(rlimit["hard"], hard_limit)
                rlimit["soft"] = min(rlimit["soft"], rlimit["hard"])

        with open(config_path, "w") as file:
            json.dump(config, file, indent=2)
        return bundle

    def berth_cycle(self):
        """Run one create/start/wait/remove cycle of `true`.

        Return the durations in seconds of the four calls, in that order.
        """
        marks = [time.perf_counter()]
        container_id = self.containers.create({"Image": "busybox", "Cmd": ["true"]})
        marks.append(time.perf_counter())
        self.containers.start(container_id)
        marks.append(time.perf_counter())
        self.containers.wait(container_id)
        marks.append(time.perf_counter())
        self.containers.remove(container_id)
        marks.append(time.perf_counter())
        return [end - begin for begin, end in zip(marks, marks[1:])]

    def bare_runc_run(self, bundle, number):
        """Run `true` once with bare `runc run` and return the duration in seconds."""
        container_id = f"bb-bare-{os.getpid()}-{number}"
        command = [self.runc, "--root", self.runc_bare_root, "run", "--bundle", bundle, container_id]
        self.bare_ids.add(container_id)
        started = time.perf_counter()
        try:
            result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, timeout=RUNC_TIMEOUT)
        except subprocess.TimeoutExpired as err:
            raise BenchError(f"{shlex.join(command)} timed out after {RUNC_TIMEOUT:.0f} s") from err
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise BenchError(f"{shlex.join(command)} exited with {result.returncode}: "
                             f"{result.stderr.decode(errors='replace').strip()}")
        # Without --detach, `runc run` deletes the container itself when the process exits.
        self.bare_ids.discard(container_id)
        return elapsed

    def run_lifecycle(self):
        cycles = self.args.cycles
        block = self.args.block
        bundle = self.prepare_bare_bundle()
        # Untimed warm-up of both kinds, so first-run costs (page cache, lazy setup) hit neither.
        for number in range(self.args.warmup):
            self.berth_cycle()
            self.bare_runc_run(bundle, f"warmup-{number}")
        connects_before = self.api.connection.connect_count

        # Alternate blocks of each kind, so machine noise hits both alike.
        berth_steps, runc_times = [], []
        while len(berth_steps) < cycles:
            count = min(block, cycles - len(berth_steps))
            for _ in range(count):
                berth_steps.append(self.berth_cycle())
            for _ in range(count):
                runc_times.append(self.bare_runc_run(bundle, len(runc_times)))

        self.results["lifecycle"] = {
            "berth": [sum(steps) for steps in berth_steps],
            "berth_steps": berth_steps,
            "runc": runc_times,
            "new_connections": self.api.connection.connect_count - connects_before,
        }

    # Logs

    def run_logs(self):
        command = f"yes {LOG_LINE_TEXT} | head -n {LOG_LINES}"
        container_id = self.containers.create({"Image": "busybox", "Cmd": ["sh", "-c", command]})
        started = time.perf_counter()
        self.containers.start(container_id)
        self.containers.wait(container_id, timeout=LOGS_CONTAINER_TIMEOUT)
        write_seconds = time.perf_counter() - started

        # Only the transfer is timed. The frames are parsed afterwards, so Python's per-frame
        # cost does not count against the daemon.
        path = f"/containers/{container_id}/logs?stdout=1"
        started = time.perf_counter()
        response = self.api.send("GET", path, timeout=HTTP_TIMEOUT)
        body = self.read_body(response, path, LOGS_READ_TIMEOUT)
        read_seconds = time.perf_counter() - started
        if response.status != 200:
            raise BenchError(f"GET {path}: expected status 200, got {response.status}: {body[:300]!r}")
        self.containers.remove(container_id)

        frames, stdout_bytes, other_bytes = parse_multiplexed(body)
        self.results["logs"] = {
            "write_seconds": write_seconds,
            "read_seconds": read_seconds,
            "wire_bytes": len(body),
            "frames": frames,
            "stdout_bytes": stdout_bytes,
            "other_bytes": other_bytes,
        }
        if stdout_bytes != LOG_PAYLOAD_BYTES or other_bytes != 0:
            raise BenchError(f"the logs payload has {stdout_bytes} stdout bytes and {other_bytes} other bytes "
                             f"in {frames} frames; expected {LOG_PAYLOAD_BYTES} stdout bytes only")

    # Export

    def run_export(self):
        """Time GET /containers/{id}/export of a 200 MB filesystem against `tar -c` of the
        same mounted directory, both read to the end by this process."""
        files = EXPORT_BYTES // EXPORT_FILE_BYTES
        script = (f"mkdir /data && for i in $(seq {files}); do "
                  f"dd if=/dev/urandom of=/data/f$i bs=1048576 count={EXPORT_FILE_BYTES // MIB} 2>/dev/null; "
                  f"done && touch /ready && sleep 600")
        container_id = self.containers.create({"Image": "busybox", "Cmd": ["sh", "-c", script]})
        self.containers.start(container_id)
        merged = os.path.join(self.base, "root", "containers", container_id, "merged")
        deadline = time.monotonic() + LOGS_CONTAINER_TIMEOUT
        while not os.path.exists(os.path.join(merged, "ready")):
            if time.monotonic() > deadline:
                raise BenchError("the export container did not write its files in time")
            time.sleep(POLL_INTERVAL)

        # Alternate the two readers so that machine noise and the page cache hit both alike.
        export_times, tar_times = [], []
        export_bytes = tar_bytes = 0
        for _ in range(EXPORT_ROUNDS):
            export_bytes, seconds = self.time_export(container_id)
            export_times.append(seconds)
            tar_bytes, seconds = time_tar(merged)
            tar_times.append(seconds)
        self.containers.remove(container_id, force=True)
        self.results["export"] = {
            "export_seconds": statistics.median(export_times),
            "export_bytes": export_bytes,
            "tar_seconds": statistics.median(tar_times),
            "tar_bytes": tar_bytes,
        }

    def time_export(self, container_id):
        """Return the size of the export tar and the seconds it took to read it."""
        path = f"/containers/{container_id}/export"
        started = time.perf_counter()
        response = self.api.send("GET", path, timeout=HTTP_TIMEOUT)
        body = self.read_body(response, path, LOGS_READ_TIMEOUT)
        seconds = time.perf_counter() - started
        if response.status != 200:
            raise BenchError(f"GET {path}: expected status 200, got {response.status}: {bytes(body[:300])!r}")
        return len(body), seconds

    def read_body(self, response, path, timeout):
        """Read a whole response body, chunked or not, within timeout seconds in total.

        Return the bytearray itself, because a copy of 50 MB would count in the timing.
        """
        deadline = time.monotonic() + timeout
        body = bytearray()
        buffer = bytearray(MIB)
        view = memoryview(buffer)
        while True:
            if time.monotonic() > deadline:
                self.api.connection.close()
                raise BenchError(f"GET {path}: the body was not read within {timeout:.0f} s "
                                 f"({len(body)} bytes so far)")
            try:
                count = response.readinto(view)
            except (OSError, http.client.HTTPException) as err:
                self.api.connection.close()
                raise BenchError(f"GET {path}: reading the body failed after {len(body)} bytes: {err!r}") from err
            if count == 0:
                return body
            body += view[:count]

    # Memory

    def run_memory(self):
        self.results["daemon_rss_kib"] = read_vm_rss_kib(self.daemon.pid)

        container_id = self.containers.create({"Image": "busybox", "Cmd": ["sleep", "30"]})
        self.containers.start(container_id)
        # Each monitor writes its pid into its container's directory.
        pid_file = os.path.join(self.base, "root", "containers", container_id, "monitor.pid")
        with open(pid_file) as f:
            monitor_pid = int(f.read().strip())
        self.results["monitor_rss_kib"] = read_vm_rss_kib(monitor_pid)
        spares = [pid for pid in find_monitor_pids(self.berth, self.base) if pid != monitor_pid]
        self.results["spare_monitor_rss_kib"] = [read_vm_rss_kib(pid) for pid in spares]
        # The monitor keeps `runc run` in the foreground for the container's whole life.
        runc_children = [pid for pid in child_pids(monitor_pid) if is_runc_process(pid)]
        self.results["monitor_runc_rss_kib"] = [read_vm_rss_kib(pid) for pid in runc_children]
        self.containers.remove(container_id, force=True)
        self.wait_for_monitors(lambda pids: monitor_pid not in pids, "the monitor to exit after the forced remove")

    def wait_for_monitors(self, condition, description, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            pids = find_monitor_pids(self.berth, self.base)
            if condition(pids):
                return pids
            if time.monotonic() > deadline:
                raise BenchError(f"timed out after {timeout:.0f} s waiting for {description}; monitor pids: {pids}")
            time.sleep(POLL_INTERVAL)

    # Clean-up

    def cleanup(self):
        """Remove everything this run started. Return the problems found, as messages."""
        problems = []
        if self.api is not None:
            self.api.close()
        steps = [self.remove_containers_through_api, self.stop_daemon, self.remove_leftover_containers,
                 self.unmount_under_base, self.remove_cgroup_parent]
        for step in steps:
            # One failed step must not skip the ones after it.
            try:
                step(problems)
            except Exception as err:
                problems.append(f"clean-up step {step.__name__} failed: {err!r}")

        if not mounts_under(self.base):
            shutil.rmtree(self.base, ignore_errors=True)
            if os.path.exists(self.base):
                problems.append(f"could not remove {self.base}")
        else:
            problems.append(f"kept {self.base} because mounts remain under it")
        return problems

    def remove_containers_through_api(self, problems):
        if self.daemon is None or self.daemon.poll() is not None or self.containers is None:
            return
        # A fresh connection, because a failed step may have left the persistent one mid-reply.
        api = ApiClient(self.socket_path)
        try:
            listed = api.call_json("GET", "/containers/json?all=1", 200)
            ids = self.containers.live_ids | {entry["Id"] for entry in listed}
            for container_id in sorted(ids):
                path = f"/containers/{container_id}?force=1"
                try:
                    response = api.send("DELETE", path)
                    text = response.read().decode("utf-8", "replace").strip()
                except (BenchError, OSError, http.client.HTTPException) as err:
                    problems.append(f"removing container {container_id[:12]}: {err}")
                    continue
                # 404: an interrupted DELETE had already removed it.
                if response.status not in (204, 404):
                    problems.append(f"DELETE {path}: expected status 204, got {response.status}: {text}")
        except BenchError as err:
            problems.append(f"listing containers for removal: {err}")
        finally:
            api.close()

    def stop_daemon(self, problems):
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(timeout=DAEMON_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                problems.append(f"berth (pid {self.daemon.pid}) ignored SIGTERM for {DAEMON_STOP_TIMEOUT:.0f} s; "
                                "sent SIGKILL")
                self.daemon.kill()
                self.daemon.wait(timeout=DAEMON_STOP_TIMEOUT)
        if self.daemon_log is not None:
            self.daemon_log.close()

    def remove_leftover_containers(self, problems):
        """Delete runc containers and monitors that survived removal through the API."""
        daemon_runc_root = os.path.join(self.base, "run", "runc")
        for runc_root, ids in [(self.runc_bare_root, self.bare_ids), (daemon_runc_root, set())]:
            if os.path.isdir(runc_root):
                ids = ids | set(os.listdir(runc_root))
            for container_id in sorted(ids):
                result = subprocess.run([self.runc, "--root", runc_root, "delete", "-f", container_id],
                                        capture_output=True, text=True, timeout=RUNC_TIMEOUT)
                if runc_root == daemon_runc_root or result.returncode == 0:
                    problems.append(f"deleted leftover runc container {container_id} in {runc_root} "
                                    f"(exit {result.returncode})")
        # A monitor outlives the daemon on purpose. One left here means a removal failed. The
        # spare monitor exits by itself once the daemon is gone, so allow it a moment.
        deadline = time.monotonic() + 5
        while find_monitor_pids(self.berth, self.base) and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
        for pid in find_monitor_pids(self.berth, self.base):
            problems.append(f"killed leftover monitor process {pid}")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def unmount_under_base(self, problems):
        for point in mounts_under(self.base):
            result = subprocess.run(["umount", "-l", point], capture_output=True, text=True, timeout=30)
            problems.append(f"unmounted leftover mount {point} (exit {result.returncode})")

    def remove_cgroup_parent(self, problems):
        """Remove the empty --cgroup-parent directories that runc created for berth.

        A directory still in use is no problem of this run, so problems stays unchanged.
        """
        cgroup_root = "/sys/fs/cgroup"
        candidates = [os.path.join(cgroup_root, self.args.cgroup_parent)]
        if os.path.isdir(cgroup_root):
            candidates += [os.path.join(cgroup_root, controller, self.args.cgroup_parent)
                           for controller in os.listdir(cgroup_root)]
        for path in candidates:
            try:
                os.rmdir(path)
            except OSError:
                # The directory is missing or still in use, for example by another berth
                # with the same cgroup parent, so it stays.
                pass


def parse_multiplexed(body):
    """Return (frame count, stdout payload bytes, other payload bytes) of a multiplexed body."""
    offset = frames = stdout_bytes = other_bytes = 0
    end = len(body)
    while offset + FRAME_HEADER.size <= end:
        stream, size = FRAME_HEADER.unpack_from(body, offset)
        offset += FRAME_HEADER.size + size
        frames += 1
        if stream == 1:
            stdout_bytes += size
        else:
            other_bytes += size
    if offset != end:
        raise BenchError(f"the logs body ends inside a frame: {end} bytes, last frame ends at {offset}")
    return frames, stdout_bytes, other_bytes


def print_lifecycle(lifecycle, args):
    berth_times, runc_times = lifecycle["berth"], lifecycle["runc"]
    berth_median = statistics.median(berth_times)
    runc_median = statistics.median(runc_times)
    ratio = berth_median / runc_median
    verdict = "met" if ratio <= LIFECYCLE_TARGET_RATIO else "NOT met"
    print(f"Lifecycle of `true`, {len(berth_times)} timed runs of each kind in alternating blocks of "
          f"{args.block}, after {args.warmup} warm-up runs of each:")
    print(f"  berth create/start/wait/remove: median {format_ms(berth_median)}   "
          f"p90 {format_ms(percentile(berth_times, 0.9))}   min {format_ms(min(berth_times))}")
    print(f"  bare runc run:                  median {format_ms(runc_median)}   "
          f"p90 {format_ms(percentile(runc_times, 0.9))}   min {format_ms(min(runc_times))}")
    print(f"  ratio berth/runc (medians): {ratio:.2f}x (target at most {LIFECYCLE_TARGET_RATIO}x: {verdict})")

    step_medians = [statistics.median(column) for column in zip(*lifecycle["berth_steps"])]
    steps = ", ".join(f"{name} {seconds * 1000:.1f} ms" for name, seconds in zip(BERTH_STEP_NAMES, step_medians))
    print(f"  berth median per call: {steps}")
    print(f"  new HTTP connections during the timed runs: {lifecycle['new_connections']} "
          "(0 means every request reused the keep-alive connection)")


def print_logs(logs):
    mb_per_s = LOG_PAYLOAD_BYTES / MIB / logs["read_seconds"]
    verdict = "met" if mb_per_s >= LOGS_TARGET_MB_PER_S else "NOT met"
    print(f"Logs: {LOG_LINES} lines of {len(LOG_LINE_TEXT) + 1} bytes = {LOG_PAYLOAD_BYTES} bytes "
          f"({LOG_PAYLOAD_BYTES // MIB} MB, with MB = 2^20 bytes here):")
    print(f"  GET /logs read in {logs['read_seconds']:.3f} s: {mb_per_s:.0f} MB/s of payload "
          f"(target at least {LOGS_TARGET_MB_PER_S:.0f} MB/s: {verdict})")

    payload_ok = logs["stdout_bytes"] == LOG_PAYLOAD_BYTES and logs["other_bytes"] == 0
    check = "OK" if payload_ok else f"WRONG, expected {LOG_PAYLOAD_BYTES} stdout bytes"
    print(f"  payload check: {logs['stdout_bytes']} stdout and {logs['other_bytes']} other bytes "
          f"in {logs['frames']} frames, {logs['wire_bytes']} body bytes after de-chunking: {check}")
    print(f"  the container wrote its output in {logs['write_seconds']:.2f} s (from start to the wait reply)")


def print_memory(results):
    print("Memory (VmRSS):")
    if "daemon_rss_kib" in results:
        print(f"  daemon, idle after the runs: {results['daemon_rss_kib'] / 1024:.1f} MiB")
    if "monitor_rss_kib" in results:
        print(f"  one monitor (sleep 30 container): {results['monitor_rss_kib'] / 1024:.1f} MiB")
        for rss in results.get("spare_monitor_rss_kib", []):
            print(f"  the daemon's spare monitor, waiting for the next start: {rss / 1024:.1f} MiB")
        for rss in results["monitor_runc_rss_kib"]:
            print(f"  its `runc run` child, alive as long as the container: {rss / 1024:.1f} MiB")


def print_export(export):
    export_rate = export["export_bytes"] / MIB / export["export_seconds"]
    tar_rate = export["tar_bytes"] / MIB / export["tar_seconds"]
    print(f"Export of a container with {EXPORT_BYTES // MIB} MB of files "
          f"(tar of {export['export_bytes'] / MIB:.0f} MB from berth, {export['tar_bytes'] / MIB:.0f} MB from tar -c):")
    print(f"  GET /containers/{{id}}/export: median {export['export_seconds']:.3f} s, {export_rate:.0f} MB/s")
    print(f"  tar -c of the mounted rootfs:  median {export['tar_seconds']:.3f} s, {tar_rate:.0f} MB/s")
    print(f"  ratio berth/tar (medians of {EXPORT_ROUNDS} alternating runs): "
          f"{export['export_seconds'] / export['tar_seconds']:.2f}x")


def print_report(bench, command_line):
    results = bench.results
    print()
    print("== berth benchmark ==")
    if "lifecycle" in results:
        print_lifecycle(results["lifecycle"], bench.args)
    if "logs" in results:
        print_logs(results["logs"])
    if "export" in results:
        print_export(results["export"])
    if "daemon_rss_kib" in results:
        print_memory(results)

    print("Command:")
    print(f"  {command_line}")
    if bench.daemon_command:
        print(f"  daemon: {shlex.join(bench.daemon_command)}")
    print("Machine:")
    print(f"  nproc: {len(os.sched_getaffinity(0))}")
    print(f"  kernel: {os.uname().release}")
    print(f"  runc: {first_line([bench.runc, '--version'])}")
    print(f"  python: {sys.version.split()[0]}")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--berth", required=True, help="path of the berth binary to benchmark")
    parser.add_argument("--busybox", required=True, help="busybox root filesystem tar (scripts/busybox-rootfs.sh)")
    parser.add_argument("--cycles", type=int, default=50, help="timed lifecycle runs of each kind (default 50)")
    parser.add_argument("--block", type=int, default=10,
                        help="runs of one kind before switching to the other (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs of each kind first (default 2)")
    parser.add_argument("--runc", default="runc", help="runc binary for the bare runs (default: runc on PATH)")
    parser.add_argument("--cgroup-parent", default="berth-bench", help="the daemon's --cgroup-parent")
    args = parser.parse_args()
    if args.cycles < 1 or args.block < 1 or args.warmup < 0:
        parser.error("--cycles and --block must be at least 1, --warmup at least 0")
    for option, path in [("--berth", args.berth), ("--busybox", args.busybox)]:
        if not os.path.isfile(path):
            parser.error(f"{option} {path}: file not found (run `make build target/busybox.tar`)")
    return args


def raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    args = parse_args()
    command_line = shlex.join([os.path.basename(sys.executable)] + sys.argv)
    # SIGTERM unwinds like Ctrl-C, so the clean-up below still runs.
    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)

    bench = Bench(args)
    print(f"base directory: {bench.base}", flush=True)
    failure = None
    try:
        startup = bench.start_daemon()
        print(f"berth answered /_ping after {startup * 1000:.0f} ms; importing busybox", flush=True)
        bench.import_image()
        print(f"lifecycle: {args.warmup} warm-up + {args.cycles} timed runs each of berth and bare runc", flush=True)
        bench.run_lifecycle()
        print("logs: writing and reading 50 MB", flush=True)
        bench.run_logs()
        print("export: writing 200 MB into a container and exporting it", flush=True)
        bench.run_export()
        print("memory: reading VmRSS", flush=True)
        bench.run_memory()
    except BenchError as err:
        failure = str(err)
    except KeyboardInterrupt:
        failure = "interrupted"
    except Exception:
        failure = traceback.format_exc()
    finally:
        # A second Ctrl-C or SIGTERM must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        problems = bench.cleanup()

    print_report(bench, command_line)
    # Keep the report before the errors when both streams go to one terminal or file.
    sys.stdout.flush()
    status = 0
    if failure is not None:
        print(f"\nERROR: {failure}", file=sys.stderr)
        status = 1
    if problems:
        print("\nClean-up found leftovers (removed now where possible):", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        status = 1
    else:
        print("Clean-up: containers removed, daemon stopped, no mounts left, base directory removed.")
    return status


if __name__ == "__main__":
    sys.exit(main())
