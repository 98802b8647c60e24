"""Turns one reply into the items a client reads, normalised and ready to compare: the status,
chosen headers, and the body as JSON fields, a message, stream frames, a tar member list or
text."""

from __future__ import annotations

import base64
import fnmatch
import io
import json
import re
import tarfile
import tomllib
from pathlib import Path

from . import paths
from .http import Response
from .normalise import Normaliser

STREAM_NAMES = {0: "stdin", 1: "stdout", 2: "stderr", 3: "systemerr"}
# The header of `GET/HEAD /containers/{id}/archive`: base64 of a JSON stat of the path.
PATH_STAT_HEADER = "X-Docker-Container-Path-Stat"


class FieldDefaults:
    """Per-endpoint defaults for steps (conformance/fields.toml): the fields compared in
    successful JSON replies, and how to read the body."""

    def __init__(self, path: Path) -> None:
        with open(path, "rb") as file:
            self.rules = tomllib.load(file).get("endpoint", [])

    def rule_for(self, method: str, path: str) -> dict:
        """Returns the first rule whose `match` fits the request, or an empty one."""
        route = f"{method} {re.sub(r'^/v[0-9.]+/', '/', path.split('?', 1)[0])}"
        for rule in self.rules:
            if fnmatch.fnmatchcase(route, rule["match"]):
                return rule
        return {}


def body_mode(response: Response, method: str) -> str:
    """Chooses how to read a body that the step has no body_mode for, by status and Content-Type."""
    if method == "HEAD" or response.status in (204, 304):
        return "text"
    content_type = (response.header("Content-Type") or "").split(";")[0].strip()
    if content_type == "application/vnd.docker.multiplexed-stream":
        return "frames"
    if content_type == "application/vnd.docker.raw-stream":
        return "raw"
    if content_type == "application/x-tar":
        return "tar"
    if content_type == "application/json" or response.body.lstrip()[:1] in (b"{", b"["):
        return "json"
    return "text"


def observe_response(response: Response, method: str, path: str, step: dict, normaliser: Normaliser,
                     defaults: FieldDefaults, fill) -> dict:
    """Returns the ordered items of one reply. `fill` fills templates in step values."""
    items: dict = {"status": response.status}
    if response.timed_out:
        items["timed_out"] = True
    for name in ["Content-Type", *step.get("compare_headers", [])]:
        items[f"header.{name}"] = _header_value(response, name, normaliser)
    # Docker 20.10 sends some streams without a Content-Type, so an endpoint's mode comes from
    # the step or conformance/fields.toml before the reply's headers.
    defaults_rule = defaults.rule_for(method, path)
    mode = step.get("body_mode") or defaults_rule.get("body_mode") or body_mode(response, method)
    body = response.body
    if mode == "ignore":
        pass
    elif response.status >= 400 and method != "HEAD":
        items["message"] = normaliser.text(error_message(body))
    elif mode in ("json", "lines"):
        items.update(_json_items(body, mode, method, path, step, normaliser, defaults, fill))
    elif mode in ("frames", "streams"):
        frames, framing = parse_frames(body)
        items["framing"] = framing
        if mode == "frames":
            items["frames"] = [[stream, normaliser.text(text)] for stream, text in frames]
        else:
            for stream in ("stdout", "stderr"):
                items[stream] = normaliser.text("".join(text for name, text in frames if name == stream))
    elif mode == "tar":
        items["tar"] = tar_members(body, step.get("tar_sizes", False))
    else:
        items["body"] = normaliser.text(body.decode("utf-8", errors="backslashreplace"))
    return _restrict(items, step.get("compare"))


def _restrict(items: dict, patterns: list[str] | None) -> dict:
    if patterns is None:
        return items
    return {key: value for key, value in items.items() if any(fnmatch.fnmatchcase(key, p) for p in patterns)}


def observe_cli(exit_code: int, stdout: str, stderr: str, step: dict, normaliser: Normaliser) -> dict:
    items = {"exit_code": exit_code, "stdout": normaliser.text(stdout), "stderr": normaliser.text(stderr)}
    return _restrict(items, step.get("compare"))


def _header_value(response: Response, name: str, normaliser: Normaliser):
    value = response.header(name)
    if value is None:
        return "<missing>"
    if name.lower() == PATH_STAT_HEADER.lower():
        try:
            return normaliser.value(json.loads(base64.b64decode(value)))
        except (ValueError, json.JSONDecodeError):
            return f"<invalid base64 JSON: {value}>"
    return normaliser.text(value)


def error_message(body: bytes) -> str:
    """Returns the `message` of a JSON error body, or the body text when it is not one."""
    text = body.decode("utf-8", errors="backslashreplace")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return f"<not JSON> {text.strip()}"
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return data["message"]
    return f"<no message field> {text.strip()}"


def _json_items(body: bytes, mode: str, method: str, path: str, step: dict, normaliser: Normaliser,
                defaults: FieldDefaults, fill) -> dict:
    text = body.decode("utf-8", errors="backslashreplace")
    try:
        if mode == "lines":
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            data = json.loads(text) if text.strip() else None
    except json.JSONDecodeError as err:
        return {"body": f"<invalid JSON: {err}> {text[:200]}"}
    # Presence checks read JSON types before normalising, which turns numbers into text.
    present = {f"present.{field_path}": paths.type_name(paths.extract(data, field_path))
               for field_path in step.get("present", [])}
    data = normaliser.value(data)
    if "select" in step and isinstance(data, list):
        data = _select(data, fill(step["select"]))
    if "sort_by" in step and isinstance(data, list):
        data = sorted(data, key=lambda item: json.dumps(paths.extract(item, step["sort_by"]), default=str))
    items: dict = {}
    # An empty `fields` list compares no field (the status and headers still count).
    fields = step["fields"] if "fields" in step else defaults.rule_for(method, path).get("fields")
    if fields is not None:
        for field_path in fields:
            items[f"body.{field_path}"] = paths.extract(data, field_path)
    elif "present" not in step:
        items["body"] = data
    items.update(present)
    return items


def _select(data: list, rule: dict) -> list:
    """Keeps the list entries whose value at `rule.path` starts with `rule.prefix` (or equals
    `rule.equals`): the suite's own containers and images among whatever else Docker has."""
    selected = []
    for item in data:
        value = paths.extract(item, rule["path"])
        if "prefix" in rule and isinstance(value, str) and value.startswith(rule["prefix"]):
            selected.append(item)
        elif "equals" in rule and value == rule["equals"]:
            selected.append(item)
    return selected


def parse_frames(body: bytes) -> tuple[list[tuple[str, str]], str]:
    """Splits Docker's multiplexed stream into frames. Each frame has an 8-byte header: the
    stream, 3 zero bytes and the big-endian length. Also returns "valid" or the framing error."""
    frames = []
    position = 0
    while position < len(body):
        header = body[position:position + 8]
        if len(header) < 8:
            return frames, f"truncated frame header at byte {position}"
        stream, padding, size = header[0], header[1:4], int.from_bytes(header[4:8], "big")
        if stream not in STREAM_NAMES or padding != b"\0\0\0":
            return frames, f"invalid frame header {header.hex()} at byte {position}"
        payload = body[position + 8:position + 8 + size]
        if len(payload) < size:
            return frames, f"frame at byte {position} announces {size} bytes but has {len(payload)}"
        frames.append((STREAM_NAMES[stream], payload.decode("utf-8", errors="backslashreplace")))
        position += 8 + size
    return frames, "valid"


def _member_type(member: tarfile.TarInfo) -> str:
    if member.isfile():
        return "f"
    if member.isdir():
        return "d"
    if member.issym():
        return "l"
    if member.islnk():
        return "h"
    return "o"


def tar_members(body: bytes, with_sizes: bool) -> list[str] | str:
    """Lists the members of a tar, sorted, as `<type> <path>` with type f, d, l (symlink),
    h (hard link) or o (other), and the size of regular files when `with_sizes`."""
    members = []
    try:
        with tarfile.open(fileobj=io.BytesIO(body), mode="r|*") as archive:
            for member in archive:
                kind = _member_type(member)
                name = member.name.removeprefix("./").rstrip("/") or "."
                entry = f"{kind} {name}"
                if kind == "l":
                    entry += f" -> {member.linkname}"
                if with_sizes and kind == "f":
                    entry += f" {member.size}"
                members.append(entry)
    except tarfile.TarError as err:
        return f"<not a tar: {err}; {len(body)} bytes>"
    return sorted(members)
