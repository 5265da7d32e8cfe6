#!/usr/bin/env bash
# Installs the Debian packages vpcdns builds and tests with, only when something is missing.
# Works as root or through sudo. Never touches the network otherwise.
set -euo pipefail

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
# gcc and libc6-dev: `make bench` compiles its UDP echo (scripts/bench/udp-echo.c) with cc.
for p in jq libldns-dev zlib1g-dev ldnsutils pkg-config nsd unbound dnsutils bind9-dnsutils knot-dnsutils dnsperf dnsdist golang-github-dnstap-golang-dnstap-cli iproute2 curl openssl python3 time bc chromium chromium-driver gcc libc6-dev ${EXTRA_PACKAGES:-}; do
  have_pkg "$p" || need+=("$p")
done
# The end-to-end AWS test (make e2e-aws): moto's server plays the EC2/STS APIs, awscli is
# the unchanged client. From PyPI, only when missing.
pip_install() {
  command -v moto_server >/dev/null && command -v aws >/dev/null && return 0
  local pip="pip3"; command -v pip3 >/dev/null || pip="python3 -m pip"
  $pip install -q 'moto[server]' awscli 2>/dev/null || $pip install -q --break-system-packages 'moto[server]' awscli \
    || echo "warning: could not install moto[server] and awscli; make e2e-aws will skip" >&2
}
if [ ${#need[@]} -eq 0 ]; then
  pip_install
  exit 0
fi
echo "installing: ${need[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root or sudo to install: ${need[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The nsd and unbound packages start system services on install where systemd runs; the
# tests start their own instances on loopback ports, so those services are not needed.
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
for svc in nsd unbound dnsdist; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $SUDO systemctl stop "$svc" || true
  fi
done
pip_install
