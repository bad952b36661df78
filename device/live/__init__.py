"""GPT-Live (``wss://…/v1/live/sessions``): the protocol core, the connection and the simulator.

* :mod:`.models`, :mod:`.events`, :mod:`.protocol`, :mod:`.validate`: sans-I/O protocol core.
* :mod:`.connection`: the thin asyncio WebSocket wrapper for the device.
* :mod:`.simulator` / :mod:`.simsession` / :mod:`.simspeech`: ``pivoice simulator --api live``.

The reference is ``docs/gpt-live-protocol.md`` of the team; the choices made where it says
NOT FOUND or UNVERIFIED are listed in README.md ("GPT-Live").
"""
