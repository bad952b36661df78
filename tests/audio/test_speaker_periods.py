"""The speaker writes a reply a period (40 ms) at a time and silence in shorter pieces (20 ms):
half the wake-ups while a reply plays, and a reply waits behind no more silence than before.
Whatever it asks the pipeline for is what it writes (the echo reference is padded to the same
length), so the audio lands in the output exactly where the reads put it. Through PortAudio
and ALSA's file plugin (fakespk: a 16 kHz WAV)."""

from __future__ import annotations

import os
import threading
import wave

import numpy as np

from hardware.audio import Speaker


class Script:
    """A reader: silence for ``lead`` reads, then ``audio`` in whatever sizes are asked, then
    silence; every request is kept as (bytes asked, bytes given)."""

    def __init__(self, audio: bytes, lead: int = 6, tail: int = 6) -> None:
        self.audio, self.lead, self.tail = audio, lead, tail
        self.asked: list[tuple[int, int]] = []
        self.done = threading.Event()
        self._pos = 0

    def __call__(self, nbytes: int) -> bytes:
        out = b""
        if len(self.asked) >= self.lead and self._pos < len(self.audio):
            out = self.audio[self._pos:self._pos + nbytes]
            self._pos += len(out)
        self.asked.append((nbytes, len(out)))
        if self._pos >= len(self.audio) and sum(1 for _, g in self.asked[-self.tail:] if g == 0) == self.tail:
            self.done.set()
        return out


def test_a_reply_goes_out_a_period_at_a_time_and_silence_in_shorter_pieces(tmp_path):
    wav_path = tmp_path / "out.wav"
    os.environ["FAKESPK_WAV"] = str(wav_path)
    rng = np.random.default_rng(3)
    tone = (np.sin(np.arange(16000 * 3 // 10) / 5) * 6000 + rng.normal(0, 300, 4800)).astype("<i2")
    script = Script(tone.tobytes())
    speaker = Speaker("fakespk", script)
    speaker.open()
    try:
        assert speaker.rate == 16000 and speaker.period_ms == 40 and speaker.quiet_ms == 20
        assert script.done.wait(30)
    finally:
        speaker.close()
    full, quiet = 16000 * 40 // 1000 * 2, 16000 * 20 // 1000 * 2
    # after an empty read the next asks for a short piece; after audio, for a whole period
    for (_, given), (asked, _) in zip(script.asked, script.asked[1:]):
        assert asked == (full if given else quiet)
    assert script.asked[0][0] == quiet
    assert any(asked == full and given == full for asked, given in script.asked)   # the reply in whole periods
    # everything asked for was written, in order, padded with silence where short
    with wave.open(str(wav_path)) as w:
        out = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    written = sum(asked for asked, _ in script.asked[:-1]) // 2   # the last read may not have been written
    assert written <= len(out) <= written + script.asked[-1][0] // 2
    start = sum(asked for asked, _ in script.asked[:script.lead]) // 2
    assert np.array_equal(out[start:start + len(tone)], tone)
    assert not out[:start].any()


def test_the_echo_references_level_covers_the_last_200_ms_whatever_the_speaker_reads():
    """reference_db (the talk-over detector's "is the reply loud") is the loudest 20 ms of the
    last 200 ms: with 40 ms reads it must not stretch to 400 ms."""
    from device.audio.playback import PlaybackBuffer

    buf = PlaybackBuffer(16000, prebuffer_ms=0)
    loud = (np.ones(640) * 8000).astype("<i2").tobytes()          # 40 ms at -12 dBFS
    quiet = (np.ones(640) * 8).astype("<i2").tobytes()            # 40 ms at -72 dBFS
    buf.push("a", loud + quiet * 6)
    buf.read(1280)
    assert buf.reference_db() > -13
    for _ in range(5):                                             # 200 ms of quiet reply since
        buf.read(1280)
    assert buf.reference_db() < -70
