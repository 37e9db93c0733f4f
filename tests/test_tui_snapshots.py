"""Snapshot tests: every screen at a fixed size over deterministic sample data (fixed clock, UTC).

Update baselines with `pytest tests/test_tui_snapshots.py --snapshot-update` and review the SVGs.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual.widgets import Input

from tests import sample
from tests._tui import settle

WIDE = (160, 48)
NARROW = (80, 24)


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def keys(*presses: str):
    async def run_before(pilot) -> None:
        await settle(pilot)
        for press in presses:
            await pilot.press(*press.split(" "))
            await settle(pilot)
        # A blinking cursor is shown or not depending on when the frame is taken: pin it shown.
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()

    return run_before


def test_overview(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(sample.make_app(tmp_path), terminal_size=WIDE, run_before=keys())


def test_overview_narrow(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(sample.make_app(tmp_path), terminal_size=NARROW, run_before=keys())


def test_alerts_read_only(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(sample.make_app(tmp_path, read_only=True), terminal_size=NARROW, run_before=keys("2"))


def test_overview_filtered(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(
        sample.make_app(tmp_path), terminal_size=WIDE, run_before=keys("slash i r i s", "enter")
    )


def test_endpoint_detail(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(sample.make_app(tmp_path), terminal_size=WIDE, run_before=keys("enter"))


def test_alerts(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(sample.make_app(tmp_path), terminal_size=WIDE, run_before=keys("2"))


def test_alerts_narrow(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(sample.make_app(tmp_path), terminal_size=NARROW, run_before=keys("2"))


def test_alert_timeline(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(sample.make_app(tmp_path), terminal_size=WIDE, run_before=keys("2", "down", "enter"))


def test_ack_dialog(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(sample.make_app(tmp_path), terminal_size=WIDE, run_before=keys("2", "down", "a"))


def test_silence_dialog(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(sample.make_app(tmp_path), terminal_size=WIDE, run_before=keys("2", "down", "s"))


def test_models_compare(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(
        sample.make_app(tmp_path),
        terminal_size=WIDE,
        run_before=keys("3", "down down", "tab", "space", "down", "space", "c"),
    )


def test_promote_dialog(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(
        sample.make_app(tmp_path), terminal_size=WIDE, run_before=keys("3", "down down", "tab", "down", "p")
    )


def test_audit(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(sample.make_app(tmp_path), terminal_size=WIDE, run_before=keys("4"))


def test_help(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(sample.make_app(tmp_path), terminal_size=WIDE, run_before=keys("2", "question_mark"))


def test_command_bar(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(sample.make_app(tmp_path), terminal_size=NARROW, run_before=keys("colon", "a l"))


def test_overview_no_color(snap_compare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(sample.make_app(tmp_path), terminal_size=NARROW, run_before=keys())


def test_quality_view(snap_compare, tmp_path: Path) -> None:
    # Opened from the overview's first row (fraud-scorer, no log), then by command for iris-prod.
    assert snap_compare(
        sample.make_app(tmp_path),
        terminal_size=WIDE,
        run_before=keys("colon", "d r i f t space i r i s minus p r o d", "enter", "down down"),
    )
