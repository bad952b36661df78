"""Finding a PortAudio device by name and the rate and channels it takes, and opening it
(:class:`PortAudioDevice`, what hardware.microphone and hardware.audio share). Many USB and
I2S devices only do 44.1 or 48 kHz ("Invalid sample rate -9997", field notes item 9), and the
ReSpeaker 2-mic HAT only gives stereo."""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass
from typing import Any

from . import cards, quiet
from .errors import AudioDeviceError

RATES = (48000, 44100, 32000, 24000, 22050, 16000, 96000)

logger = logging.getLogger(__name__)


def release_alsa_config() -> bool:
    """Give back what PortAudio's device listing left loaded. To list devices PortAudio opens
    every PCM that ALSA's configuration defines, so each plugin of libasound2-plugins is loaded
    (the a52 encoder brings libavcodec and ~70 more libraries, jack libjack...): ~11 MB resident
    for the life of the process, though only the PCMs the device opens are used.
    ``snd_config_update_free_global`` frees ALSA's parsed configuration and unloads every plugin
    no open PCM holds (ALSA counts them); ALSA reads its configuration again at the next open.
    PortAudio keeps copies of the names it listed. Called after a device is opened (the event
    loop's thread, where PortAudio lists devices); the microphone's reopen at another period does
    not call it (that open reads the configuration again, 0.7 ms, and keeps it). ALSA takes its
    configuration lock for this and holds a reference while a PCM opens, so an open on another
    thread meanwhile is safe (alsa-lib 1.2.8). Returns False where libasound cannot be reached."""
    try:
        lib = ctypes.CDLL("libasound.so.2")
        lib.snd_config_update_free_global()
    except (OSError, AttributeError) as exc:
        logger.debug("ALSA configuration not released: %s", exc)
        return False
    return True


def _pyaudio() -> Any:
    quiet.install()  # before PortAudio loads: ALSA's and JACK's messages stay out of stderr
    try:
        import pyaudio
    except ImportError:
        raise AudioDeviceError("PyAudio is not installed",
                               fix="apt install portaudio19-dev, then pip install pyaudio "
                                   "(install.sh does both)") from None
    return pyaudio


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    max_input_channels: int
    max_output_channels: int
    default_rate: int


def list_devices(pa: Any) -> list[DeviceInfo]:
    out = []
    for i in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(i)
        out.append(DeviceInfo(i, info["name"], int(info["maxInputChannels"]), int(info["maxOutputChannels"]),
                              int(info["defaultSampleRate"])))
    return out


def find_device(pa: Any, name: str, *, output: bool) -> DeviceInfo:
    """A device by exact name, else by unique substring; ``default`` is the host default;
    ``card:ID`` is a sound card by its ALSA card id (hardware.cards)."""
    kind = "output" if output else "input"
    usable = [d for d in list_devices(pa) if (d.max_output_channels if output else d.max_input_channels) > 0]
    if name.startswith(cards.PREFIX):
        found: DeviceInfo = cards.find(usable, name[len(cards.PREFIX):], kind=kind)[0]
        return found
    if name == "default":
        try:
            info = pa.get_default_output_device_info() if output else pa.get_default_input_device_info()
            return next(d for d in usable if d.index == info["index"])
        except (OSError, StopIteration):
            pass
    exact = [d for d in usable if d.name == name]
    matches = exact or [d for d in usable if name.lower() in d.name.lower()]
    if len(matches) == 1 or exact:
        return matches[0]
    known = ", ".join(repr(d.name) for d in usable) or "none"
    if not usable:
        raise AudioDeviceError(f"no {kind} device at all (wanted {name!r})",
                               fix="is the sound card there? `aplay -l` / `arecord -l` list ALSA's cards")
    if not matches:
        raise AudioDeviceError(f"no {kind} device named {name!r} (found: {known})",
                               fix=f"set [audio] {kind}_device to one of them; `pivoice devices` lists them")
    raise AudioDeviceError(f"{kind} device name {name!r} is ambiguous (matches: {', '.join(d.name for d in matches)})",
                           fix=f"set [audio] {kind}_device to the full name")


def negotiate(pa: Any, device: DeviceInfo, *, output: bool, preferred_rate: int | None = None,
              channels: int | None = None) -> tuple[int, int]:
    """(rate, channels) the device accepts: mono if it can, else stereo; its default rate first."""
    pyaudio = _pyaudio()
    max_ch = device.max_output_channels if output else device.max_input_channels
    rates = [r for r in (preferred_rate, device.default_rate, *RATES) if r]
    for count in [c for c in ((channels,) if channels else (1, 2)) if c <= max_ch]:
        for rate in dict.fromkeys(rates):
            side = "output" if output else "input"
            kwargs = {"rate": rate, f"{side}_device": device.index, f"{side}_channels": count,
                      f"{side}_format": pyaudio.paInt16}
            try:
                if pa.is_format_supported(**kwargs):
                    return rate, count
            except ValueError:
                continue
    raise AudioDeviceError(f"{device.name!r} accepts none of the rates {sorted(set(rates))} as 16-bit mono or stereo")


class PortAudioDevice:
    """What the microphone and the speaker share: find, negotiate, open, close."""

    output = False
    device_name: str
    period_ms: int
    preferred_rate: int | None
    want_channels: int | None = None

    def _init_stream_state(self) -> None:
        self.rate = self.channels = 0
        self._pa: Any = None
        self._stream: Any = None
        self._stream_args: dict[str, Any] = {}

    def _open_stream(self, **stream_kwargs: Any) -> DeviceInfo:
        pyaudio = _pyaudio()
        kind = "output" if self.output else "input"
        self._pa = pyaudio.PyAudio()
        try:
            device = find_device(self._pa, self.device_name, output=self.output)
            self.rate, self.channels = negotiate(self._pa, device, output=self.output,
                                                 preferred_rate=self.preferred_rate, channels=self.want_channels)
            index = {"output_device_index" if self.output else "input_device_index": device.index}
            self._stream_args = {"format": pyaudio.paInt16, "channels": self.channels, "rate": self.rate,
                                 kind: True, **index, **stream_kwargs}
            self._stream = self._pa.open(frames_per_buffer=self.rate * self._buffer_ms() // 1000, **self._stream_args)
        except AudioDeviceError:
            self._close_stream()
            raise
        except OSError as exc:
            self._close_stream()
            raise AudioDeviceError(f"cannot open {kind} device {self.device_name!r}: {exc}") from None
        finally:
            release_alsa_config()   # the plugins PortAudio's listing loaded, opened or not
        logger.info("%s %r open at %d Hz, %d channel(s)", kind, device.name, self.rate, self.channels)
        return device

    def _buffer_ms(self) -> int:
        """The stream's own period (PortAudio's buffer size)."""
        return self.period_ms

    def _close_stream(self) -> None:
        close_quietly(self._stream)
        self._stream = None
        if self._pa is not None:
            self._pa.terminate()
            self._pa = None


def close_quietly(stream: Any) -> None:
    """Stop and close a PyAudio stream (None: nothing), each step even when the one before
    failed: a stream PyAudio closed itself (an overflow) refuses to stop, but closing it still
    takes it off PyAudio's list."""
    if stream is None:
        return
    for step in (stream.stop_stream, stream.close):
        try:
            step()
        except OSError:
            pass
