"""Shared fixtures: the simulator on loopback and real speech clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soxr

from device.simulator.server import RealtimeSimulator, SimulatorOptions

CLIPS = Path("/usr/share/pocketsphinx/test/data")


def load_clip_24k(name: str = "goforward.raw") -> bytes:
    """A real human speech clip from Debian's pocketsphinx-testdata, as 24 kHz PCM16."""
    path = CLIPS / name
    assert path.exists(), f"{path} is missing: run ./install.sh --dev (it installs pocketsphinx-testdata)"
    samples = np.frombuffer(path.read_bytes(), dtype="<i2").astype(np.float32)
    return np.clip(soxr.resample(samples, 16000, 24000), -32768, 32767).astype("<i2").tobytes()


@pytest.fixture
def speech_24k() -> bytes:
    return load_clip_24k()


@pytest.fixture
async def simulator_factory():
    started: list[RealtimeSimulator] = []

    async def start(**options) -> RealtimeSimulator:
        options.setdefault("speedup", 8.0)
        options.setdefault("seed", 1)
        sim = await RealtimeSimulator(SimulatorOptions(**options)).start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        await sim.stop()


@pytest.fixture
async def simulator(simulator_factory):
    return await simulator_factory()
