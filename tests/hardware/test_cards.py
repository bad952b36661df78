"""HAT presets find their sound card by its ALSA card id, through the real PortAudio/ALSA stack
(a fake card: an ALSA PCM named like the card, tests/fixtures/asoundrc.respeaker)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from device import config as cfg
from device.errors import AudioDeviceError
from hardware import cards
from hardware.audio import DeviceInfo

ROOT = Path(__file__).parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
ALSA_BASE = f"/usr/share/alsa/alsa.conf:{FIXTURES / 'asoundrc.fake'}"


def preset_config(tmp_path: Path, preset: str) -> Path:
    """The config install.sh writes (the template with the preset set), socket moved to tmp."""
    text = (ROOT / "services" / "config.toml").read_text()
    text = text.replace('preset = "generic"', f'preset = "{preset}"')
    text = text.replace('socket = "/run/pivoice/control.sock"', f'socket = "{tmp_path / "c.sock"}"')
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def devices(config: Path, alsa: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "device.cli", "devices", "--config", str(config)], check=False, cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "ALSA_CONFIG_PATH": alsa, "PYTHONPATH": str(ROOT)})


def test_the_config_template_leaves_the_device_to_the_preset(tmp_path):
    config = cfg.load(preset_config(tmp_path, "respeaker-2mic"))
    assert (config.audio.input_device, config.audio.output_device) == ("card:seeed2micvoicec",) * 2
    assert cfg.load(preset_config(tmp_path, "generic")).audio.input_device == "default"


def test_devices_says_the_preset_picked_the_hat_card_and_why(tmp_path):
    result = devices(preset_config(tmp_path, "respeaker-2mic"), f"{ALSA_BASE}:{FIXTURES / 'asoundrc.respeaker'}")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {line.split(":")[0]: line for line in result.stdout.splitlines() if line.startswith(("input:", "output:"))}
    for kind in ("input", "output"):
        assert lines[kind].startswith(f"{kind}: seeed2micvoicec at 48000 Hz"), lines[kind]
        assert "[hardware] preset = 'respeaker-2mic'" in lines[kind]
        assert "it is named 'seeed2micvoicec'" in lines[kind]


def test_a_missing_hat_card_names_the_overlay_to_check(tmp_path):
    result = devices(preset_config(tmp_path, "respeaker-2mic"), ALSA_BASE)
    assert result.returncode == 1
    assert "input: NOT FOUND: the ReSpeaker 2-Mics Pi HAT (ALSA card 'seeed2micvoicec')" in result.stdout
    assert "dtoverlay=respeaker-2mic-v2_0-overlay" in result.stdout
    # it did not quietly fall back to the host's default device
    assert "'fakemic'" in result.stdout and "input: fakemic" not in result.stdout


# PortAudio's own names for ALSA hardware PCMs: "<card name>: <pcm name> (hw:N,M)".
PI_DEVICES = [DeviceInfo(0, "bcm2835 Headphones: - (hw:0,0)", 0, 8, 44100),
              DeviceInfo(1, "seeed-2mic-voicecard: bcm2835-i2s-wm8960-hifi wm8960-hifi-0 (hw:1,0)", 2, 2, 48000),
              DeviceInfo(2, "USB PnP Sound Device: Audio (hw:2,0)", 1, 0, 48000),
              DeviceInfo(3, "sysdefault", 128, 128, 48000),
              DeviceInfo(4, "default", 128, 128, 48000)]


def test_hardware_pcms_match_by_card_index_in_proc_asound_cards():
    device, why = cards.find(PI_DEVICES, "seeed2micvoicec", kind="input", proc=FIXTURES / "proc-asound-cards.respeaker")
    assert device.index == 1
    assert "card 1 is 'seeed2micvoicec' in /proc/asound/cards" in why


def test_a_renamed_card_matches_by_index_and_an_absent_one_does_not():
    renamed = [DeviceInfo(5, "some-future-name: tlv320aic3x-hifi (hw:1,0)", 2, 2, 48000), *PI_DEVICES[2:]]
    device, _ = cards.find(renamed, "seeed2micvoicec", kind="input", proc=FIXTURES / "proc-asound-cards.respeaker")
    assert device.index == 5
    with pytest.raises(AudioDeviceError, match="ALSA cards: 0: Headphones, 1: seeed2micvoicec, 2: vc4hdmi0") as err:
        cards.find(PI_DEVICES[2:], "seeed2micvoicec", kind="input", proc=FIXTURES / "proc-asound-cards.respeaker")
    assert "seeed-voicecard" in str(err.value)


def test_every_hat_preset_names_a_known_card_with_setup_advice():
    from hardware.presets import PRESETS
    named = {p.input_device for p in PRESETS.values()} | {p.output_device for p in PRESETS.values()}
    ids = {n[len(cards.PREFIX):] for n in named if n.startswith(cards.PREFIX)}
    assert ids == set(cards.CARDS)
    assert all("config.txt" in cards.CARDS[i].setup for i in ids)
