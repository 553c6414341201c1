#!/usr/bin/env bash
# Installs Prometheus and promtool from the Debian package `prometheus` when either is missing.
# Idempotent: does nothing when both are on PATH. Needs root (or sudo) and apt.
# Where systemd runs, the package also enables its own service on :9090; the tests and the
# local config start their own instance on other ports either way.
set -euo pipefail

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install.sh: prometheus/promtool missing and apt-get is not available" >&2
  exit 1
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "install.sh: installing the prometheus package needs root" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v prometheus >/dev/null && command -v promtool >/dev/null
echo "install.sh: $(prometheus --version 2>&1 | head -n1)"
