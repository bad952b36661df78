"""Find a HAT's sound card among PortAudio's devices by its ALSA card id.

A preset names its card as ``card:ID`` (e.g. ``card:seeed2micvoicec``), the id ALSA gives the
card (``aplay -l``, /proc/asound/cards). PortAudio does not list ``plughw:CARD=ID`` names: it
lists each hardware PCM as ``"<card name>: <pcm name> (hw:N,M)"`` (e.g. ``"seeed-2mic-voicecard:
bcm2835-i2s-wm8960-hifi wm8960-hifi-0 (hw:1,0)"``) plus the PCMs the ALSA configuration defines
by name. A device belongs to the card when its ``hw:N`` is the card's index in
/proc/asound/cards, or when its name contains the card id or one of the card's known names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import AudioDeviceError

PREFIX = "card:"
PROC_CARDS = Path("/proc/asound/cards")
_HW = re.compile(r"\(hw:(\d+),(\d+)\)\s*$")
_PROC_LINE = re.compile(r"^\s*(\d+)\s+\[(\S+)\s*\]:")


@dataclass(frozen=True)
class Card:
    id: str                         # ALSA card id, at most 15 characters
    names: tuple[str, ...]          # card names as PortAudio prints them before the colon
    description: str
    setup: str                      # what to check when the card is missing


CARDS = {c.id: c for c in (
    Card("seeed2micvoicec", ("seeed-2mic-voicecard",), "ReSpeaker 2-Mics Pi HAT",
         "v2.0 board (TLV320AIC3104): dtoverlay=respeaker-2mic-v2_0-overlay and dtoverlay=i2s-mmap in "
         "/boot/firmware/config.txt (overlay from Seeed-Studio/seeed-linux-dtoverlays); v1.x board (WM8960): "
         "the seeed-voicecard driver; then reboot"),
    Card("seeed4micvoicec", ("seeed-4mic-voicecard",), "ReSpeaker 4-Mic Array",
         "the seeed-voicecard driver (seeed-4mic-voicecard overlay, AC108 codec) in "
         "/boot/firmware/config.txt; then reboot"),
    Card("sndrpigooglevoi", ("snd_rpi_googlevoicehat_soundcar", "googlevoicehat"), "Google AIY Voice HAT",
         "dtoverlay=googlevoicehat-soundcard in /boot/firmware/config.txt; then reboot"),
    Card("aiyvoicebonnet", ("aiy-voicebonnet",), "Google AIY Voice Bonnet",
         "dtoverlay=aiy-voicebonnet in /boot/firmware/config.txt and the aiy-voicebonnet-soundcard-dkms driver "
         "(rt5645 codec); then reboot"),
)}


def card_for(card_id: str) -> Card:
    """The known card, or a bare one for an id a user wrote themselves."""
    return CARDS.get(card_id) or Card(card_id, (), f"ALSA card {card_id!r}",
                                      "its driver or overlay; `aplay -l` must list it")


def proc_cards(path: Path = PROC_CARDS) -> dict[int, str]:
    """Card index -> card id, from /proc/asound/cards (empty when there is no sound at all)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    return {int(m.group(1)): m.group(2) for m in map(_PROC_LINE.match, text.splitlines()) if m}


def _why(name: str, card: Card, indices: dict[int, str]) -> tuple[int, str] | None:
    """(rank, reason) when the PortAudio device ``name`` is on ``card``; lower ranks are surer."""
    hw = _HW.search(name)
    if hw and indices.get(int(hw.group(1))) == card.id:
        return 0, f"it is hw:{hw.group(1)},{hw.group(2)} and card {hw.group(1)} is {card.id!r} in /proc/asound/cards"
    lowered = name.lower()
    for token in (card.id, *card.names):
        if lowered == token.lower() or lowered.startswith(token.lower() + ":"):
            return 1, f"it is named {token!r}"
    for token in (card.id, *card.names):
        if token.lower() in lowered:
            return 2, f"its name contains {token!r}"
    return None


def find(devices: Sequence[Any], card_id: str, *, kind: str, proc: Path = PROC_CARDS) -> tuple[Any, str]:
    """(device, why) for the card's first PCM (device 0 first) among ``devices`` (objects with
    ``.name``), or AudioDeviceError naming the overlay/driver to check."""
    card = card_for(card_id)
    indices = proc_cards(proc)
    hits = [(d, why) for d in devices if (why := _why(d.name, card, indices))]
    if hits:
        def order(hit: tuple[Any, tuple[int, str]]) -> tuple[int, int, int]:
            hw = _HW.search(hit[0].name)
            return (hit[1][0], int(hw.group(2)) if hw else 0, getattr(hit[0], "index", 0))
        device, (_, reason) = min(hits, key=order)
        return device, f"{card.description} (ALSA card {card.id!r}): {device.name!r}, because {reason}"
    known = ", ".join(repr(d.name) for d in devices) or "none"
    cards = ", ".join(f"{i}: {c}" for i, c in sorted(indices.items())) or "no sound cards at all"
    raise AudioDeviceError(
        f"the {card.description} (ALSA card {card.id!r}) has no {kind} device here "
        f"(ALSA cards: {cards}; PortAudio {kind} devices: {known})",
        fix=f"check {card.setup}; `aplay -l` and `arecord -l` must list {card.id!r}")
