#!/bin/sh
# Installs what berth needs on Debian 12 when it is missing: runc, busybox-static (the default
# image), procps (ps, for top), curl (used by `make run`) and a Rust toolchain check.
set -eu
missing=""
command -v runc >/dev/null 2>&1 || missing="$missing runc"
dpkg -s busybox-static >/dev/null 2>&1 || missing="$missing busybox-static"
command -v ps >/dev/null 2>&1 || missing="$missing procps"
command -v curl >/dev/null 2>&1 || missing="$missing curl"
if [ -n "$missing" ]; then
    echo "installing:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install a Rust toolchain (https://rustup.rs) and run make again" >&2
    exit 1
fi
