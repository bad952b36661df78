"""The device states a person can see on the LEDs (the state machine itself is in the app)."""

from __future__ import annotations

import enum


class DeviceState(enum.StrEnum):
    IDLE = "idle"            # connected, waiting for the person
    LISTENING = "listening"  # the person is talking; audio goes up
    THINKING = "thinking"    # turn sent, waiting for the reply
    SPEAKING = "speaking"    # the reply is playing
    MUTED = "muted"          # microphone off on purpose
    OFFLINE = "offline"      # no link to the Realtime server; reconnecting
    ERROR = "error"          # needs a person: bad key, rejected config, no audio device
