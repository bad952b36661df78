"""`pivoice token-server` as an admin uses it: add and revoke devices, and the refusals."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

PIVOICE = [sys.executable, "-m", "device.cli"]


def run(*args, env=None):
    return subprocess.run([*PIVOICE, "token-server", *args], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, **(env or {})))


def test_add_and_revoke_devices(tmp_path):
    tokens = tmp_path / "device-tokens"
    added = run("--tokens", str(tokens), "--add", "kitchen")
    assert added.returncode == 0, added.stderr
    name, token = added.stdout.split()
    assert name == "kitchen" and len(token) >= 32
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
    assert tokens.read_text() == f"kitchen {token}\n"
    again = run("--tokens", str(tokens), "--add", "kitchen")
    assert again.returncode == 2 and "already in" in again.stderr
    assert run("--tokens", str(tokens), "--revoke", "kitchen").returncode == 0
    assert tokens.read_text() == ""
    missing = run("--tokens", str(tokens), "--revoke", "kitchen")
    assert missing.returncode == 1 and "no device 'kitchen'" in missing.stderr


def test_refuses_to_start_without_a_key_or_with_an_open_tokens_file(tmp_path):
    tokens = tmp_path / "device-tokens"
    tokens.write_text("kitchen abcdefghijklmnopqrstuvwxyz\n")
    tokens.chmod(0o644)
    no_key = run("--tokens", str(tokens), "--port", "0", env={"OPENAI_API_KEY": "", "CREDENTIALS_DIRECTORY": ""})
    assert no_key.returncode == 2 and "no OpenAI API key" in no_key.stderr and "OPENAI_API_KEY" in no_key.stderr
    open_file = run("--tokens", str(tokens), "--port", "0", env={"OPENAI_API_KEY": "sk-test-0000000000"})
    assert open_file.returncode == 2 and "chmod 600" in open_file.stderr
    assert "sk-test" not in open_file.stderr + open_file.stdout
