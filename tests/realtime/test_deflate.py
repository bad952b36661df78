"""The device compresses what it streams up at zlib's fastest level (device/wsdeflate.py): the
bytes on the wire, counted by a TCP relay between the device's connection and the simulator,
are what level 1 makes of those frames, not websockets' default level 6."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import soxr
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode

from device.realtime import events as ev
from device.realtime.connection import Endpoint, RealtimeConnection
from device.realtime.protocol import RealtimeProtocol

CLIP = Path("/usr/share/pocketsphinx/test/data/goforward.raw")


class Relay:
    """Loopback TCP relay to ``port`` that counts the bytes the client sends."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.upstream = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, count: bool) -> None:
            while data := await src.read(65536):
                if count:
                    self.upstream += len(data)
                dst.write(data)
                await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False), return_exceptions=True)


def speech_chunks(period_ms: int = 50) -> list[bytes]:
    """Real speech at the session's 24 kHz, one capture period at a time."""
    pcm = np.frombuffer(CLIP.read_bytes(), "<i2").astype(np.float32)
    speech = soxr.resample(pcm, 16000, 24000).astype(np.int16)
    step = 24 * period_ms
    return [speech[i:i + step].tobytes() for i in range(0, len(speech) - step, step)]


def wire_bytes(frames: list[str], negotiated: PerMessageDeflate, level: int) -> int:
    """What these frames take on the wire, compressed at ``level`` with the negotiated window:
    payload, 2 + 2 bytes of header (126..65535 bytes long) and the 4-byte client mask."""
    ext = PerMessageDeflate(negotiated.remote_no_context_takeover, negotiated.local_no_context_takeover,
                            negotiated.remote_max_window_bits, negotiated.local_max_window_bits,
                            {**negotiated.compress_settings, "level": level})
    total = 0
    for text in frames:
        payload = len(ext.encode(Frame(Opcode.TEXT, text.encode())).data)
        assert 126 <= payload < 65536
        total += payload + 8
    return total


@pytest.mark.skipif(not CLIP.exists(), reason="pocketsphinx-testdata is not installed (./install.sh --dev)")
async def test_streamed_audio_is_deflated_at_the_fastest_level(simulator):
    port = int(simulator.url.rsplit(":", 1)[1].split("/", 1)[0])
    relay = Relay(port)
    url = simulator.url.replace(f":{port}", f":{await relay.start()}")
    conn = await RealtimeConnection.open(Endpoint(url=url, model="gpt-realtime", api_key="sk-test-key-0000"),
                                         ping_interval_s=None)
    try:
        (negotiated,) = [e for e in conn._ws.protocol.extensions if isinstance(e, PerMessageDeflate)]
        chunks = speech_chunks()
        frames = [RealtimeProtocol().send(ev.InputAudioAppend.from_pcm(c)) for c in chunks]
        before = relay.upstream           # the handshake has been through the relay
        for chunk in chunks:
            await conn.send(ev.InputAudioAppend.from_pcm(chunk))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if relay.upstream - before >= wire_bytes(frames, negotiated, 1):
                break
        sent = relay.upstream - before
    finally:
        await conn.close()
        relay.server.close()
    level1, level6 = wire_bytes(frames, negotiated, 1), wire_bytes(frames, negotiated, 6)
    assert level1 > level6                 # the levels are told apart by size alone
    assert sent == level1, (sent, level1, level6)
    assert sent < 0.75 * sum(len(t) + 8 for t in frames)   # and it is compressed
