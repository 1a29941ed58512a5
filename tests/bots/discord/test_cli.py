"""`robotrader discord`, and `run` with a Discord token on the emulator, stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from db.vault import generate_master_key
from tests.bots.discord.conftest import TOKEN
from tests.emulators.discord_api import DiscordEmulator

USER = 4_000_001


@pytest.fixture
def emulator() -> Iterator[DiscordEmulator]:
    with DiscordEmulator(token=TOKEN) as running:
        running.add_user(USER, "ana", locale="en-US")
        yield running


@pytest.mark.parametrize("command", ["discord", "run"])
def test_the_front_end_runs_from_the_cli_and_stops_cleanly(
    tmp_path: Path, emulator: DiscordEmulator, command: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROBOTRADER_")}
    env.update(
        ROBOTRADER_DATA_DIR=str(tmp_path / "data"),
        ROBOTRADER_MASTER_KEY=generate_master_key(),
        ROBOTRADER_MARKET_DATA="replay",
        ROBOTRADER_WEB_PORT="0",
        ROBOTRADER_DISCORD_TOKEN=TOKEN,
        ROBOTRADER_DISCORD_API_URL=emulator.api_base,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "robotrader", command],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "discord.started" in line or (not line and proc.poll() is not None):
                break
        assert any("discord.started" in line for line in lines), "".join(lines)
        [started] = [line for line in lines if "runtime.started services=" in line]
        services = started.split("services=", 1)[1].split()[0].split(",")
        assert "discord" in services and (command == "run" or services == ["discord"])
        interaction = emulator.invoke(USER, "help")  # in the user's DM with the bot
        record = emulator.wait_for(
            lambda: (r := emulator.responses(interaction)).followups and r, timeout=15
        )
        assert "/bot create" in record.followups[0]["embeds"][0]["description"]
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, "".join(lines) + out
    assert "discord.stopped" in out and "runtime.stopped" in out
    assert TOKEN not in "".join(lines) + out
