"""Per-message deflate on the device's WebSocket links, at zlib's fastest level.

OpenAI's servers accept permessage-deflate (the upgrade answers with it), and websockets then
compresses every message the device sends at zlib's default level 6. While a person talks that
is an ``input_audio_buffer.append`` of base64 audio every capture period, and level 6 spends
~190 us on each 50 ms of 24 kHz speech on this machine (0.37 % of a core; a Pi Zero 2 W ~10x
that) to make it 66 % of its size; level 1 spends ~60 us for 69 %
(``bench/deflate_bench.py`` prints both, on real speech). The window and memory level stay
websockets' defaults; what the server sends is inflated as before."""

from __future__ import annotations

from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

#: zlib.Z_BEST_SPEED
LEVEL = 1
#: websockets' own default memory level for clients
MEM_LEVEL = 5


def client_extensions() -> list[ClientPerMessageDeflateFactory]:
    """The ``extensions`` argument for ``websockets.asyncio.client.connect``."""
    return [ClientPerMessageDeflateFactory(compress_settings={"level": LEVEL, "memLevel": MEM_LEVEL})]
