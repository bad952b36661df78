"""GPT-Live (``wss://…/v1/live/sessions``): the protocol core, the connection and the simulator.

* :mod:`.models`, :mod:`.events`, :mod:`.protocol`, :mod:`.validate`: sans-I/O protocol core.
* :mod:`.delegation`, :mod:`.transcripts`, :mod:`.ondemand`: sans-I/O helpers for the device's
  conversation core (delegated tool calls to results; transcript fragments to turns and
  carry-over history; when to close an idle, billed session).
* :mod:`.connection`: the thin asyncio WebSocket wrapper for the device.
* ``device/simulator/live_*.py``: ``pivoice simulator --api live``, on this same core.

The reference is ``docs/gpt-live-protocol.md`` of the team; the choices made where it says
NOT FOUND or UNVERIFIED are listed in README.md ("GPT-Live").
"""
