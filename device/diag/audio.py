"""``pivoice devices | mic-test | speaker-test``: the audio chain, with or without the daemon.

They open the devices themselves (PortAudio/ALSA, as the daemon does), so they work when the
daemon is stopped; while it runs it may hold the devices, which is said plainly.
"""

from __future__ import annotations

import asyncio
import json
import math
import wave
from collections.abc import Callable
from typing import Any, TypedDict

import numpy as np
import soxr

from hardware import audio as hw
from hardware import cards
from hardware.bridge import LoopBridge
from hardware.presets import preset

from ..audio.frontend import FrontEnd
from ..audio.miclevel import NO_SIGNAL_PEAK
from ..audio.vad import WebRtcVad
from ..config import Config
from ..errors import AudioDeviceError

CLIP_LEVEL = 32000


class _Row(TypedDict):
    index: int
    name: str
    inputs: int
    outputs: int
    default_rate: int
    input_rates: list[int]
    output_rates: list[int]


def _pa() -> Any:
    return hw._pyaudio().PyAudio()


def devices(config: Config, *, as_json: bool) -> int:
    pa = _pa()
    try:
        found = hw.list_devices(pa)
        rows: list[_Row] = []
        for d in found:
            rates_in = _rates(pa, d, output=False) if d.max_input_channels else []
            rates_out = _rates(pa, d, output=True) if d.max_output_channels else []
            rows.append(_Row(index=d.index, name=d.name, inputs=d.max_input_channels, outputs=d.max_output_channels,
                             default_rate=d.default_rate, input_rates=rates_in, output_rates=rates_out))
        selected = {}
        wanted = (("input", config.audio.input_device, False), ("output", config.audio.output_device, True))
        for kind, name, output in wanted:
            try:
                d = hw.find_device(pa, name, output=output)
                rate, channels = hw.negotiate(pa, d, output=output)
                selected[kind] = {"name": d.name, "rate": rate, "channels": channels,
                                  "why": _why(config, kind, name, d, found)}
            except AudioDeviceError as exc:
                selected[kind] = {"error": str(exc)}
    finally:
        pa.terminate()
    if as_json:
        print(json.dumps({"devices": rows, "selected": selected}, indent=2))
    else:
        if not rows:
            print("no audio devices at all: is the sound card (HAT driver, USB device) there? `aplay -l`, `arecord -l`")
        for r in rows:
            kinds = ", ".join(k for k, n in (("in", r["inputs"]), ("out", r["outputs"])) if n)
            rates = sorted(set(r["input_rates"]) | set(r["output_rates"]))
            print(f"{r['index']:>3}  {r['name']:<40} {kinds:<8} rates {', '.join(str(x) for x in rates) or 'none'}")
        for kind, sel in selected.items():
            if "error" in sel:
                print(f"{kind}: NOT FOUND: {sel['error']}")
            else:
                print(f"{kind}: {sel['name']} at {sel['rate']} Hz, {sel['channels']} ch; chosen by {sel['why']}")
    return 0 if all("error" not in s for s in selected.values()) else 1


def _why(config: Config, kind: str, name: str, d: hw.DeviceInfo, found: list[hw.DeviceInfo]) -> str:
    """Which setting chose the device and how it matched, in words."""
    board = preset(config.preset)
    origin = f"[hardware] preset = {config.preset!r}" if getattr(board, f"{kind}_device") == name \
        else f"[audio] {kind}_device = {name!r} ({config.source})"
    if name.startswith(cards.PREFIX):
        usable = [x for x in found if (x.max_output_channels if kind == "output" else x.max_input_channels) > 0]
        how = cards.find(usable, name[len(cards.PREFIX):], kind=kind)[1]
    elif name == "default":
        how = "the host's default device"
    else:
        how = "exact name" if d.name == name else f"the only name containing {name!r}"
    return f"{origin}: {how}"


def _rates(pa: Any, device: hw.DeviceInfo, *, output: bool) -> list[int]:
    pyaudio = hw._pyaudio()
    ok = []
    for rate in sorted(set(hw.RATES) | {device.default_rate}):
        kwargs = dict(rate=rate, output_device=device.index, output_channels=1, output_format=pyaudio.paInt16) \
            if output else dict(rate=rate, input_device=device.index, input_channels=1, input_format=pyaudio.paInt16)
        try:
            if pa.is_format_supported(**kwargs):
                ok.append(rate)
        except ValueError:
            pass
    return ok


def _db(x: float) -> float:
    return 20 * math.log10(max(x, 1e-9))


async def _capture(device: str, seconds: float,
                   on_period: Callable[[bytes, int, int, int], None]) -> tuple[int, int, int]:
    """Read ``seconds`` of the microphone; its rate, channels and how often it overflowed."""
    done = asyncio.Event()
    state = {"bytes": 0}
    mic: hw.Microphone

    def on_audio(pcm: bytes, gap: int) -> None:
        if done.is_set():
            return
        on_period(pcm, mic.rate, mic.channels, gap)
        state["bytes"] += len(pcm)
        if state["bytes"] >= seconds * mic.rate * mic.channels * 2:
            done.set()

    mic = hw.Microphone(device, on_audio, bridge=LoopBridge())
    mic.open()
    try:
        await asyncio.wait_for(done.wait(), seconds + 5)
    except TimeoutError:
        raise AudioDeviceError(f"the microphone {device!r} delivered no audio for {seconds + 5:.0f} s") from None
    finally:
        mic.close()
    return mic.rate, mic.channels, mic.overflows


class _Levels:
    """Level and VAD figures over a stretch of capture (the whole test, or one meter line)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.samples = self.frames = self.speech = self.clipped = self.peak = 0
        self.sumsq = 0.0

    def add(self, samples: np.ndarray, speech: list[bool]) -> None:
        magnitude = np.abs(samples)
        self.samples += len(samples)
        self.sumsq += float((samples.astype(np.float64) ** 2).sum())
        self.peak = max(self.peak, int(magnitude.max(initial=0)))
        self.clipped += int((magnitude >= CLIP_LEVEL).sum())
        self.frames += len(speech)
        self.speech += sum(speech)

    @property
    def rms_db(self) -> float:
        return _db(math.sqrt(self.sumsq / max(1, self.samples)) / 32768)

    @property
    def peak_db(self) -> float:
        return _db(self.peak / 32768)


def mic_test(config: Config, *, seconds: float, device: str | None, save: str | None, as_json: bool,
             echo: bool = False) -> int:
    from .handsfree import HandsFreeProbe

    name = device or config.audio.input_device
    probe = HandsFreeProbe(config, echo=echo)
    if echo:
        why_not = probe.start_echo(config.audio.output_device, seconds)
        if why_not and not as_json:
            print(f"--echo: {why_not}")
    vad = WebRtcVad(config.turns.vad.aggressiveness)
    front: FrontEnd | None = None
    total, window = _Levels(), _Levels()
    recorded = bytearray()

    def on_period(pcm: bytes, rate: int, channels: int, gap: int) -> None:
        nonlocal front
        if front is None:
            front = FrontEnd(rate, channels)
        samples = np.frombuffer(pcm, "<i2").astype(np.int32)
        speech = []
        probe.feed(pcm, rate, channels, gap)
        for _, pcm16 in front.feed(pcm):
            speech.append(vad.is_speech(pcm16))
            if save:
                recorded.extend(pcm16)
        for levels in (total, window):
            levels.add(samples, speech)
        if window.samples >= rate * channels // 4 and not as_json:  # a meter line every 250 ms of audio
            bar = "#" * max(0, int((window.rms_db + 60) / 2))
            print(f"rms {window.rms_db:6.1f} dBFS  peak {window.peak_db:6.1f} dBFS  "
                  f"speech {'yes' if window.speech * 2 > window.frames else ' no'}  |{bar:<30}|  {probe.line()}",
                  flush=True)
            window.reset()

    try:
        rate, channels, overflows = asyncio.run(_capture(name, seconds, on_period))
    finally:
        probe.close()
    result = {"device": name, "rate": rate, "channels": channels, "seconds": seconds,
              "rms_dbfs": round(total.rms_db, 1), "peak_dbfs": round(total.peak_db, 1),
              "clipped_samples": total.clipped, "speech_share": round(total.speech / max(1, total.frames), 3),
              "overflows": overflows,
              **probe.summary()}
    if save:
        with wave.open(save, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(16000)
            wav.writeframes(bytes(recorded))
        result["saved"] = save
    silent = total.peak < NO_SIGNAL_PEAK  # below -78 dBFS: nothing reaches the device
    verdict = "no signal: check the microphone, its cable and the capture volume (alsamixer)" if silent else \
        "clipping: lower the capture gain (alsamixer)" if total.clipped > total.samples * 0.001 else "ok"
    result["verdict"] = verdict
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{name}: {rate} Hz, {channels} ch; rms {result['rms_dbfs']} dBFS, peak {result['peak_dbfs']} dBFS, "
              f"{total.clipped} clipped samples, speech in {result['speech_share']:.0%} of frames: {verdict}"
              + (f"; saved {save}" if save else "")
              + (f"; the microphone overflowed {overflows} time(s): audio was lost because it was not read in "
                 "time (is the Pi busy? `top`)" if overflows else "")
              + (f"; wake word {result['wake_word']!r} heard {result['wake_detections']} time(s)"
                 if result["wake_word"] else "")
              + (f"; stop word {result['stop_word']!r} heard {result['stop_detections']} time(s) while the "
                 "phrase played" if "stop_word" in result else "")
              + (f"; the echo canceller removed {result['echo_removed_db']} dB" if "echo_removed_db" in result else ""))
    return 1 if silent else 0


def speaker_test(config: Config, *, device: str | None, tone_hz: float, phrase: str | None, volume: int,
                 seconds: float) -> int:
    name = device or config.audio.output_device
    rate = 24000
    if phrase:
        from ..simulator.voice import synthesize

        pcm = np.frombuffer(synthesize(phrase), "<i2").astype(np.float32)
        what = f"the phrase {phrase!r}"
    else:
        t = np.arange(int(seconds * rate)) / rate
        pcm = (0.5 * 32767 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)
        fade = min(len(t), rate // 50)
        pcm[:fade] *= np.linspace(0, 1, fade)
        pcm[-fade:] *= np.linspace(1, 0, fade)
        what = f"a {tone_hz:g} Hz tone for {seconds:g} s"
    scaled = (pcm * (volume / 100) ** 2).astype("<i2")
    position = {"at": 0}
    speaker = hw.Speaker(name, lambda nbytes: b"")
    speaker.open()   # its rate is known now: convert once, to that rate
    data = (soxr.resample(scaled, rate, speaker.rate) if speaker.rate != rate else scaled).astype("<i2").tobytes()

    def read(nbytes: int) -> bytes:
        chunk = data[position["at"]:position["at"] + nbytes]
        position["at"] += len(chunk)
        return chunk

    speaker.read = read
    print(f"playing {what} at volume {volume} on {name!r} ({speaker.rate} Hz)", flush=True)
    import time

    try:
        while position["at"] < len(data) and speaker.alive:
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        speaker.close()
    if position["at"] < len(data):
        print("the speaker stopped before the end (unplugged?)")
        return 1
    print("done: did you hear it? If not: `pivoice devices`, alsamixer, the cable, the amplifier's power")
    return 0
