"""install.sh and pivoice.service in a real systemd, on Debian 12 bookworm and Debian 13 trixie
(today's Raspberry Pi OS base: Python 3.13, systemd 257), each booted with nspawn.

One container per suite, the steps in order, as an admin would live them: install
(configured for simulated hardware and the built-in simulator), the service reaches
active/running through READY=1, the journal has its lines and fields, `pivoice status` works
for an admin in the pivoice group, a hung daemon is restarted by the watchdog, a second
install changes nothing, an update (new code, install.sh again) restarts it, and
--uninstall / --purge remove it. PIVOICE_TEST_SUITES=bookworm (comma list) picks suites.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from .container import Container, fresh_root

ROOT = Path(__file__).parents[2]
SECRET = "sk-test-THIS-MUST-NOT-LEAK-123456"

pytestmark = pytest.mark.timeout(1500)


SUITES = os.environ.get("PIVOICE_TEST_SUITES", "bookworm,trixie").split(",")


@pytest.fixture(scope="module", params=SUITES)
def box(request, tmp_path_factory):
    for tool in ("systemd-nspawn", "debootstrap", "nsenter"):
        assert shutil.which(tool), f"{tool} is missing: run ./install.sh --dev (it installs systemd-container, debootstrap)"
    suite = request.param
    workdir = tmp_path_factory.mktemp(f"nspawn-{suite}")
    container = Container(fresh_root(workdir, ROOT, suite), cache_tag="" if suite == "bookworm" else f"-{suite}")
    container.boot()
    yield container
    container.shutdown()
    subprocess.run(["rm", "-rf", str(workdir / "root")], check=False)


def show(box: Container, *props: str) -> dict[str, str]:
    out = box.sh(f"systemctl show pivoice -p {','.join(props)}").stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def wait_until(check, what: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"gave up waiting for {what}")


def test_1_install_starts_the_service_through_ready(box):
    box.sh("useradd --create-home admin")
    result = box.sh(f"cd /root/pivoice && echo {SECRET} > /root/key && SUDO_USER=admin ./install.sh --simulated "
                    "--key-file /root/key")
    assert "started pivoice.service" in result.stdout, result.stdout
    state = show(box, "ActiveState", "SubState", "Type", "StatusText", "WatchdogUSec", "User")
    assert (state["ActiveState"], state["SubState"], state["Type"]) == ("active", "running", "notify")
    assert state["WatchdogUSec"] == "30s" and state["User"] == "pivoice"
    # Type=notify reaches "running" only after READY=1; STATUS= follows the device.
    wait_until(lambda: "session sess_" in show(box, "StatusText")["StatusText"], "the STATUS= line")
    # Files: the key is root-only, the config is readable, the socket is not world-accessible.
    assert box.sh("stat -c '%a %U' /etc/pivoice/openai_api_key").stdout.split() == ["600", "root"]
    assert box.sh("stat -c '%a' /etc/pivoice/config.toml").stdout.strip() == "644"
    assert box.sh("stat -c '%a %U %G' /run/pivoice/control.sock").stdout.split() == ["660", "pivoice", "pivoice"]
    assert set(box.sh("id -nG pivoice").stdout.split()) >= {"pivoice", "audio", "gpio", "spi"}


def test_2_the_journal_has_its_lines_and_fields_and_no_key(box):
    lines = wait_until(lambda: [json.loads(l) for l in box.sh("journalctl -u pivoice -o json --no-pager").stdout.splitlines()
                                if "state offline -> idle" in l], "the state line in the journal")
    assert lines[0]["PIVOICE_STATE"] == "idle" and lines[0]["PIVOICE_SESSION_ID"].startswith("sess_")
    assert lines[0]["SYSLOG_IDENTIFIER"] == "pivoice"
    journal = box.sh("journalctl -u pivoice --no-pager").stdout
    assert "pivoice is up" in journal
    assert SECRET not in journal and SECRET not in box.sh("systemctl status pivoice --no-pager", check=False).stdout


def test_3_pivoice_status_works_for_the_admin(box):
    result = box.sh("runuser -u admin -- pivoice status")
    assert "state" in result.stdout and "idle" in result.stdout and "sess_" in result.stdout
    data = json.loads(box.sh("runuser -u admin -- pivoice status --json").stdout)
    assert data["state"] == "idle" and data["api_key"] == "set" and SECRET not in json.dumps(data)
    denied_logs = box.sh("runuser -u admin -- pivoice logs -n 50", check=False)
    assert denied_logs.returncode == 2 and "sudo pivoice logs" in denied_logs.stdout
    assert "pivoice is up" in box.sh("pivoice logs -n 50").stdout
    doctor = box.sh("runuser -u admin -- pivoice doctor", check=False)
    assert doctor.returncode == 0, doctor.stdout
    assert "PASS  service          pivoice.service is active, enabled" in doctor.stdout
    assert "PASS  daemon" in doctor.stdout and "PASS  service user" in doctor.stdout
    box.sh("useradd stranger")
    denied = box.sh("runuser -u stranger -- pivoice status", check=False)
    assert denied.returncode != 0 and "pivoice group" in denied.stderr


def test_4_a_hung_daemon_is_restarted_by_the_watchdog(box):
    before = show(box, "MainPID", "NRestarts")
    box.sh(f"kill -STOP {before['MainPID']}")
    after = wait_until(lambda: (s := show(box, "MainPID", "NRestarts", "ActiveState", "SubState"))
                       and s["MainPID"] not in ("0", before["MainPID"]) and s["SubState"] == "running" and s,
                       "the watchdog restart", timeout=150)
    assert int(after["NRestarts"]) == int(before["NRestarts"]) + 1
    journal = box.sh("journalctl -u pivoice --no-pager").stdout
    assert "Watchdog timeout" in journal


def test_5_a_second_install_changes_nothing(box):
    before = show(box, "MainPID")
    stamps = box.sh("stat -c '%Y %n' /etc/systemd/system/pivoice.service /etc/pivoice/config.toml "
                    "/etc/pivoice/openai_api_key /opt/pivoice/.installed").stdout
    result = box.sh("cd /root/pivoice && SUDO_USER=admin ./install.sh --simulated --key-file /root/key")
    assert "nothing to change" in result.stdout, result.stdout
    assert show(box, "MainPID") == before
    assert box.sh("stat -c '%Y %n' /etc/systemd/system/pivoice.service /etc/pivoice/config.toml "
                  "/etc/pivoice/openai_api_key /opt/pivoice/.installed").stdout == stamps


def test_6_an_edited_config_is_never_overwritten(box):
    box.sh("sed -i 's/^volume = 80/volume = 55/' /etc/pivoice/config.toml")
    result = box.sh("cd /root/pivoice && ./install.sh --simulated")
    assert "kept your /etc/pivoice/config.toml" in result.stdout
    assert "volume = 55" in box.sh("cat /etc/pivoice/config.toml").stdout


def test_6b_an_update_reinstalls_and_restarts_only_when_the_code_changed(box):
    """The update path in the README: git pull (here: a changed source file), install.sh again."""
    before = show(box, "MainPID")
    box.sh("echo '# an update' >> /root/pivoice/device/__init__.py")
    result = box.sh("cd /root/pivoice && ./install.sh --simulated")
    assert "installed pivoice into /opt/pivoice/venv" in result.stdout and "restarted pivoice.service" in result.stdout
    after = wait_until(lambda: (s := show(box, "MainPID", "ActiveState", "SubState")) and s["SubState"] == "running"
                       and s["MainPID"] not in ("0", before["MainPID"]) and s, "the restart after the update")
    assert after["ActiveState"] == "active"
    assert "# an update" in box.sh("cat /opt/pivoice/venv/lib/python3*/site-packages/device/__init__.py").stdout
    again = box.sh("cd /root/pivoice && ./install.sh --simulated")
    assert "restarted" not in again.stdout and show(box, "MainPID") == {"MainPID": after["MainPID"]}


def test_7_uninstall_then_purge(box):
    result = box.sh("cd /root/pivoice && ./install.sh --uninstall")
    assert "kept /etc/pivoice" in result.stdout
    assert box.sh("systemctl cat pivoice", check=False).returncode != 0
    assert box.sh("test -e /opt/pivoice", check=False).returncode != 0
    assert box.sh("test -e /etc/pivoice/config.toml", check=False).returncode == 0
    box.sh("cd /root/pivoice && ./install.sh --uninstall --purge")
    assert box.sh("test -e /etc/pivoice", check=False).returncode != 0
    assert box.sh("getent passwd pivoice", check=False).returncode != 0


def test_refuses_without_root_and_on_another_os(box):
    result = box.sh("runuser -u admin -- /root/pivoice/install.sh 2>&1 || true; "
                    "cp -r /root/pivoice /tmp/p && chmod -R a+rX /tmp/p && runuser -u admin -- /tmp/p/install.sh", check=False)
    assert result.returncode != 0 and "run as root" in result.stdout + result.stderr
    swap = "cp /etc/os-release /tmp/os && sed -i 's/^VERSION_CODENAME=.*/VERSION_CODENAME=buster/' /etc/os-release && "
    other = box.sh(swap + "/root/pivoice/install.sh; rc=$?; cp /tmp/os /etc/os-release; exit $rc", check=False)
    assert other.returncode != 0 and "unsupported OS" in other.stderr
    # --dry-run only warns: the whole plan is printed on any OS
    plan = box.sh(swap + "/root/pivoice/install.sh --dry-run; rc=$?; cp /tmp/os /etc/os-release; exit $rc", check=False)
    assert plan.returncode == 0 and "warning: unsupported OS" in plan.stdout and "would run:" in plan.stdout


def test_unit_exposure_is_low():
    unit = ROOT / "services" / "pivoice.service"
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=30", str(unit)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:]
    exposure = float(result.stdout.split("Overall exposure level for pivoice.service:")[1].split()[0])
    assert exposure <= 3.0
