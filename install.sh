#!/usr/bin/env bash
# pivoice installer for Raspberry Pi OS / Debian bookworm (run as root).
#
#   ./install.sh [--preset NAME] [--key-file FILE]
#                             install the device: system packages, the system user pivoice
#                             (groups audio, gpio, spi), a virtual environment in /opt/pivoice,
#                             /etc/pivoice/config.toml (never overwritten), the API key in a
#                             root-only file handed to the service as a systemd credential, and
#                             pivoice.service, enabled and started. The key comes from --key-file
#                             or $OPENAI_API_KEY.
#   ./install.sh --simulated  the same, configured for simulated audio and GPIO and the built-in
#                             Realtime simulator: no sound card, no key, no network needed.
#   ./install.sh --uninstall [--purge]
#                             stop and remove the service and /opt/pivoice; --purge also removes
#                             /etc/pivoice (config and key) and the pivoice user. --purge alone is
#                             refused (it deletes the key): write --uninstall --purge.
#   ./install.sh --dev        set up this checkout for development and tests (.venv).
#
# Options: --dry-run (print the whole plan, changing nothing; runs anywhere: no root, no systemd,
# another OS only give warnings), --help. Presets: generic, respeaker-2mic, respeaker-4mic,
# aiy-voicehat, aiy-voicebonnet. Idempotent: a second run changes nothing. Update: git pull,
# then run it again (the service restarts only when the code or unit changed).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mode=device
dry_run=0
simulated=0
purge=0
preset=""
key_file=""
PREFIX=${PIVOICE_PREFIX:-/opt/pivoice}
ETC=/etc/pivoice
UNIT=/etc/systemd/system/pivoice.service
PRESETS=(generic respeaker-2mic respeaker-4mic aiy-voicehat aiy-voicebonnet)

# System packages, by purpose. Later features add to these lists, nowhere else.
PKGS_BUILD=(python3-venv python3-dev gcc pkg-config)
PKGS_AUDIO=(portaudio19-dev libasound2-dev alsa-utils)
PKGS_SYSTEMD=(libsystemd-dev)
PKGS_VOICE=(flite)                        # the simulator's offline speech
PKGS_TEST=(pocketsphinx-testdata sox pulseaudio pulseaudio-utils libasound2-plugins  # speech clips, real-time audio
           systemd-container debootstrap)                                        # the real-systemd test
PKGS_DEVICE=(ca-certificates)
PKGS_PI=(python3-lgpio python3-rpi.gpio python3-spidev)  # the Pi's GPIO libraries, seen through the venv

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }
run() { if [ "$dry_run" = 1 ]; then printf '  would run: %s\n' "$*"; else "$@"; fi; }

usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; }
# A precondition of a real run; --dry-run only warns, so the whole plan is printed anywhere.
need() { if [ "$dry_run" = 1 ]; then say "warning: $* (a real run stops here)"; else die "$*"; fi; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dev) mode=dev ;;
    --uninstall) mode=uninstall ;;
    --purge) purge=1 ;;
    --simulated) simulated=1 ;;
    --preset) [ $# -ge 2 ] || die "--preset needs a name: ${PRESETS[*]}"; preset=$2; shift ;;
    --preset=*) preset=${1#--preset=} ;;
    --key-file) [ $# -ge 2 ] || die "--key-file needs a file name"; key_file=$2; shift ;;
    --key-file=*) key_file=${1#--key-file=} ;;
    --dry-run) dry_run=1 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done
if [ "$purge" = 1 ] && [ "$mode" != uninstall ]; then
  printf 'install.sh: usage error: --purge deletes the config and the API key; it only goes with --uninstall:\n  %s --uninstall --purge\n' "$0" >&2
  exit 2
fi
[ "$dry_run" = 1 ] && say "dry run: nothing is changed; each step that would change something is shown"

require_root() {
  [ "$(id -u)" = 0 ] || need "run as root (sudo $0): it installs system packages, a user and a service"
}

require_debian() {
  if [ ! -r /etc/os-release ]; then
    need "cannot read /etc/os-release: only Debian and Raspberry Pi OS bookworm and trixie are supported"
    return
  fi
  # shellcheck disable=SC1091
  . /etc/os-release
  case "${ID:-}:${VERSION_CODENAME:-}" in
    debian:bookworm|raspbian:bookworm|debian:trixie|raspbian:trixie) ;;
    *) need "unsupported OS '${PRETTY_NAME:-unknown}': pivoice supports Debian / Raspberry Pi OS bookworm and trixie" ;;
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
  if ! command -v "$py" >/dev/null; then
    need "no $py found: install python3 (3.11 or newer)" >&2
  elif ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    need "$py is older than 3.11" >&2
  fi
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
  make_venv "$here/.venv" "audio,systemd,aec,wake,test"
  say "ready: $here/.venv/bin/pivoice demo   |   ./run-tests"
}

# ------------------------------------------------------------------------------ the device
changed=0
note_change() {
  changed=$((changed + 1))
  if [ "$dry_run" = 1 ]; then say "(dry run, not done) $*"; else say "$*"; fi
}

source_stamp() {  # a hash of what gets installed; the venv is rebuilt only when it changes
  (cd "$here" && find device hardware services pyproject.toml -type f ! -path '*/__pycache__/*' ! -name '*.pyc' \
     -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}

ensure_group() {
  getent group "$1" >/dev/null && return
  run groupadd --system "$1"
  note_change "created group $1"
}

ensure_user() {
  if ! getent passwd pivoice >/dev/null; then
    run useradd --system --user-group --home-dir /var/lib/pivoice --no-create-home --shell /usr/sbin/nologin \
      --comment "pivoice voice device" pivoice
    note_change "created system user pivoice"
  fi
  for g in audio gpio spi; do
    ensure_group "$g"
    if ! id -nG pivoice 2>/dev/null | tr ' ' '\n' | grep -qx "$g"; then
      run usermod -aG "$g" pivoice
      note_change "added pivoice to group $g"
    fi
  done
  local admin=${SUDO_USER:-}
  if [ -n "$admin" ] && [ "$admin" != root ] && ! id -nG "$admin" | tr ' ' '\n' | grep -qx pivoice; then
    run usermod -aG pivoice "$admin"
    note_change "added $admin to group pivoice (pivoice status without sudo; log in again first)"
  fi
}

install_venv() {
  local stamp extras=audio,systemd,aec,wake py
  stamp=$(source_stamp)
  case "$preset" in respeaker-*) extras=$extras,apa102 ;; esac
  if [ -x "$PREFIX/venv/bin/pivoice" ] && [ "$(cat "$PREFIX/.installed" 2>/dev/null)" = "$stamp $extras" ]; then
    return
  fi
  py=$(python_bin)
  run mkdir -p "$PREFIX"
  if [ ! -x "$PREFIX/venv/bin/python" ]; then
    # System site packages: on a Pi, apt's lgpio / RPi.GPIO / spidev are the ones that work.
    run "$py" -m venv --system-site-packages "$PREFIX/venv"
  fi
  run "$PREFIX/venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  run "$PREFIX/venv/bin/python" -m pip install -q --disable-pip-version-check "$here[$extras]"
  run install -m 0644 "$here/README.md" "$PREFIX/README.md"
  if [ "$dry_run" = 0 ]; then echo "$stamp $extras" > "$PREFIX/.installed"; fi
  run ln -sfn "$PREFIX/venv/bin/pivoice" /usr/local/bin/pivoice
  note_change "installed pivoice into $PREFIX/venv"
  restart_needed=1
}

write_config() {
  run install -d -m 0755 "$ETC"
  local target=$ETC/config.toml tmp
  tmp=$(mktemp)
  cp "$here/services/config.toml" "$tmp"
  if [ -n "$preset" ]; then
    sed -i "s/^preset = .*/preset = \"$preset\"/" "$tmp"
  fi
  if [ "$simulated" = 1 ]; then
    sed -i -e 's/^simulator = false.*/simulator = true            # the built-in simulator (install.sh --simulated)/' \
           -e 's/^backend = "pyaudio".*/backend = "simulated"       # no sound card (install.sh --simulated)/' \
           -e 's/^pin_factory = "auto".*/pin_factory = "mock"        # no GPIO (install.sh --simulated)/' "$tmp"
  fi
  if [ ! -e "$target" ]; then
    run install -m 0644 "$tmp" "$target"
    note_change "wrote $target"
  elif ! cmp -s "$tmp" "$target"; then
    say "kept your $target (it differs from the default; the default is in $PREFIX/config.toml.default)"
    [ -n "$preset" ] && ! grep -q "^preset = \"$preset\"" "$target" && \
      say "note: set [hardware] preset = \"$preset\" in $target yourself"
  fi
  if ! cmp -s "$tmp" "$PREFIX/config.toml.default" 2>/dev/null; then
    run install -m 0644 "$tmp" "$PREFIX/config.toml.default"
  fi
  rm -f "$tmp"
}

write_key() {
  local target=$ETC/openai_api_key key=""
  if [ -n "$key_file" ]; then
    [ -r "$key_file" ] || die "cannot read the key file $key_file"
    key=$(tr -d ' \r\n' < "$key_file")
  elif [ -n "${OPENAI_API_KEY:-}" ]; then
    key=$OPENAI_API_KEY
  fi
  if [ -n "$key" ]; then
    if [ "$(cat "$target" 2>/dev/null)" != "$key" ]; then
      if [ "$dry_run" = 1 ]; then say "would write the API key to $target (mode 0600)"; else
        (umask 077; printf '%s' "$key" > "$target.new") && chown root:root "$target.new" && mv "$target.new" "$target"
      fi
      note_change "stored the API key in $target (root only, given to the service as a credential)"
      restart_needed=1
    fi
  elif [ ! -e "$target" ]; then
    if [ "$dry_run" = 0 ]; then (umask 077; : > "$target"); fi
    note_change "created an empty $target"
    [ "$simulated" = 1 ] || say "no API key given: put it in $target (root only) and run: systemctl reload pivoice"
  fi
  if [ -e "$target" ] && [ "$(stat -c %a "$target")" != 600 ]; then
    run chmod 0600 "$target"
    note_change "made $target root-only"
  fi
}

install_unit() {
  if ! cmp -s "$here/services/pivoice.service" "$UNIT"; then
    run install -m 0644 "$here/services/pivoice.service" "$UNIT"
    run systemctl daemon-reload
    note_change "installed $UNIT"
    restart_needed=1
  fi
  if [ "$(systemctl is-enabled pivoice 2>/dev/null)" != enabled ]; then
    run systemctl enable --quiet pivoice
    note_change "enabled pivoice.service (starts at boot)"
  fi
  if ! systemctl is-active --quiet pivoice 2>/dev/null; then
    run systemctl start pivoice
    note_change "started pivoice.service"
  elif [ "${restart_needed:-0}" = 1 ]; then
    run systemctl restart pivoice
    note_change "restarted pivoice.service"
  fi
}

check_arch() {
  case "$(uname -m)" in
    aarch64|x86_64) ;;
    armv7l|armv6l) say "warning: 32-bit OS: pivoice works, but use 64-bit Raspberry Pi OS if you can (wheels, speed)" ;;
    *) say "warning: untested architecture $(uname -m)" ;;
  esac
}

on_a_pi() { grep -qa "Raspberry Pi" /proc/device-tree/model 2>/dev/null; }

install_device() {
  require_root
  require_debian
  check_arch
  if [ -n "$preset" ] && [[ ! " ${PRESETS[*]} " =~ " $preset " ]]; then
    die "unknown preset '$preset'; use one of: ${PRESETS[*]}"
  fi
  command -v systemctl >/dev/null && [ -d /run/systemd/system ] || need "systemd is not running here: pivoice runs as a systemd service"
  local pkgs=("${PKGS_BUILD[@]}" "${PKGS_AUDIO[@]}" "${PKGS_SYSTEMD[@]}" "${PKGS_DEVICE[@]}")
  [ "$simulated" = 1 ] && pkgs+=("${PKGS_VOICE[@]}")
  on_a_pi && pkgs+=("${PKGS_PI[@]}")
  restart_needed=0
  install_packages "${pkgs[@]}"
  ensure_user
  install_venv
  write_config
  write_key
  install_unit
  if [ "$changed" = 0 ]; then
    say "nothing to change: pivoice is installed, up to date and running"
  elif [ "$dry_run" = 1 ]; then
    say "dry run: $changed step(s) above would change this machine; run without --dry-run (as root) to do them"
  else
    say "done: pivoice.service is $(systemctl is-active pivoice 2>/dev/null || true). Check it with: pivoice status"
  fi
}

uninstall_device() {
  require_root
  if systemctl list-unit-files pivoice.service >/dev/null 2>&1 && [ -e "$UNIT" ]; then
    run systemctl disable --now --quiet pivoice || true
    run rm -f "$UNIT"
    run rm -rf /etc/systemd/system/pivoice.service.d
    run systemctl daemon-reload
    note_change "removed pivoice.service"
  fi
  run rm -rf "$PREFIX"
  run rm -f /usr/local/bin/pivoice
  note_change "removed $PREFIX"
  if [ "$purge" = 1 ]; then
    run rm -rf "$ETC" /var/lib/pivoice
    if getent passwd pivoice >/dev/null; then run userdel pivoice; fi
    if getent group pivoice >/dev/null; then run groupdel pivoice 2>/dev/null || true; fi
    note_change "purged $ETC and the pivoice user"
  else
    say "kept $ETC (config and key); --uninstall --purge removes it"
  fi
}

case "$mode" in
  dev) install_dev ;;
  uninstall) uninstall_device ;;
  device) install_device ;;
esac
