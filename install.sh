#!/usr/bin/env bash
# pivoice installer for Raspberry Pi OS / Debian bookworm.
#
#   ./install.sh --dev        set up this checkout for development and tests: system packages,
#                             then a virtual environment in ./.venv with pivoice and test tools.
#   ./install.sh              install the device (system user, /opt/pivoice, config, unit):
#                             not yet available, see README "Status".
#
# Options: --dry-run (print what would be done), --help.
# Idempotent: packages already present are not fetched again; the venv is reused.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mode=device
dry_run=0

# System packages, by purpose. Later features add to these lists, nowhere else.
PKGS_BUILD=(python3-venv python3-dev gcc pkg-config)
PKGS_AUDIO=(portaudio19-dev libasound2-dev alsa-utils)
PKGS_SYSTEMD=(libsystemd-dev)
PKGS_VOICE=(flite)                        # the simulator's offline speech
PKGS_TEST=(pocketsphinx-testdata sox pulseaudio pulseaudio-utils libasound2-plugins)  # speech clips, real-time audio

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }
run() { if [ "$dry_run" = 1 ]; then printf '  would run: %s\n' "$*"; else "$@"; fi; }

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dev) mode=dev ;;
    --dry-run) dry_run=1 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done

require_root() {
  [ "$(id -u)" = 0 ] || die "run as root (sudo $0 $*): it installs system packages"
}

require_debian() {
  [ -r /etc/os-release ] || die "cannot read /etc/os-release: only Debian bookworm and Raspberry Pi OS are supported"
  # shellcheck disable=SC1091
  . /etc/os-release
  case "${ID:-}:${VERSION_CODENAME:-}" in
    debian:bookworm|raspbian:bookworm|debian:trixie|raspbian:trixie) ;;
    *) die "unsupported OS '${PRETTY_NAME:-unknown}': pivoice supports Debian / Raspberry Pi OS bookworm" ;;
  esac
}

install_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "system packages already present"
    return
  fi
  say "installing system packages: ${missing[*]}"
  run apt-get update -qq
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

python_bin() {
  local py=${PYTHON:-python3}
  command -v "$py" >/dev/null || die "no $py found: install python3 (3.11 or newer)"
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "$py is older than 3.11"
  echo "$py"
}

make_venv() {  # make_venv DIR EXTRAS
  local venv=$1 extras=$2 py
  py=$(python_bin)
  if [ ! -x "$venv/bin/python" ]; then
    say "creating virtual environment $venv"
    run "$py" -m venv "$venv"
  fi
  run "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  run "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$here[$extras]"
}

install_dev() {
  require_root
  require_debian
  install_packages "${PKGS_BUILD[@]}" "${PKGS_AUDIO[@]}" "${PKGS_SYSTEMD[@]}" "${PKGS_VOICE[@]}" "${PKGS_TEST[@]}"
  make_venv "$here/.venv" "audio,systemd,test"
  say "ready: $here/.venv/bin/pivoice demo   |   ./run-tests"
}

case "$mode" in
  dev) install_dev ;;
  device) die "the device install (system user, /opt/pivoice, systemd unit) is not available yet; use --dev for a checkout" ;;
esac
