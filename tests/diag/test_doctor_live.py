"""``pivoice doctor``'s handshake check when ``[realtime] api = "live"``: against the Live simulator."""

from __future__ import annotations

from device import config as cfg
from device.diag import doctor
from device.diag.daemon import render_status
from device.simulator.live_server import LiveSimulator
from device.simulator.live_session import LiveSimOptions


async def handshake(monkeypatch, key: str, model: str = "gpt-live-1") -> tuple[doctor.Check, LiveSimulator]:
    monkeypatch.setenv("OPENAI_API_KEY", key)
    async with LiveSimulator(LiveSimOptions(api_keys=frozenset({"sk-live-good"}), ping_interval_s=None)) as sim:
        config = cfg.parse({"realtime": {"api": "live", "url": sim.url, "model": model}})
        return await doctor._handshake(config), sim


async def test_doctor_checks_the_live_handshake_and_closes_the_session(monkeypatch):
    check, sim = await handshake(monkeypatch, "sk-live-good")
    assert check.name == "live" and check.result == "PASS" and "GPT-Live handshake ok" in check.detail
    assert sim.stats.sessions[0].state == "closed"        # not left open (and billed)


async def test_doctor_names_a_refused_key_and_model_with_their_fix(monkeypatch):
    check, _ = await handshake(monkeypatch, "sk-live-bad")
    assert check.result == "FAIL" and "refused" in check.detail and "key" in check.fix and "sk-live-bad" not in check.detail + check.fix
    check, _ = await handshake(monkeypatch, "sk-live-good", model="gpt-live-9")
    assert check.result == "FAIL" and "model" in check.detail and "gpt-live-1" in check.fix


def test_status_names_the_api():
    live = render_status({"api": "live", "link": "standby", "billed_s": 12.5, "idle_closes": 2})
    assert "standby: connects when spoken to" in live and "live (GPT-Live, connected on demand): 12.5 s billed" in live
    assert "realtime (always connected)" in render_status({"link": "up"})
