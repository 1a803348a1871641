"""Which engines a benchmark runs (`benchmarks.scaleout.engines`), and the command that runs an engine of
another commit (`engine@ref`) for a before in the same run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.harness import REPO
from benchmarks.scaleout import engine_command, engines


def test_both_engines_by_default_and_in_the_order_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULSE_BENCH_ENGINES", raising=False)
    assert engines() == ("driver", "keyed")
    monkeypatch.setenv("PULSE_BENCH_ENGINES", " keyed@HEAD , keyed,keyed")
    assert engines() == ("keyed@HEAD", "keyed")


@pytest.mark.parametrize("asked", ["fast", "fast@HEAD", " , "])
def test_an_unknown_engine_names_the_choices(monkeypatch: pytest.MonkeyPatch, asked: str) -> None:
    monkeypatch.setenv("PULSE_BENCH_ENGINES", asked)
    with pytest.raises(ValueError, match="choose from driver, keyed, each optionally @<git ref>"):
        engines()


def test_this_commits_engine_runs_the_installed_cli() -> None:
    assert engine_command("keyed") == ([sys.executable, "-m", "pulse.cli"], {"PULSE_ENGINE": "keyed"})


def test_an_engine_at_a_ref_runs_that_checkouts_code() -> None:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
    command, env = engine_command(f"keyed@{head.stdout.strip()}")
    assert command == [sys.executable, "-m", "pulse.cli"]
    assert env["PULSE_ENGINE"] == "keyed"
    checkout = env["PYTHONPATH"].split(":")[0]
    assert checkout.endswith("/app")
    assert checkout.startswith("/tmp/pulse-baseline-")
    assert (Path(checkout) / "pulse" / "cli.py").is_file()


def test_a_ref_that_is_not_a_commit_says_so() -> None:
    with pytest.raises(RuntimeError, match="not a commit in this clone"):
        engine_command("keyed@no-such-ref-anywhere")
