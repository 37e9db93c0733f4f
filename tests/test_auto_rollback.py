"""Automatic rollback's guards, with real parts: a sqlite-backed MLflow registry, a real store, the real
engine (in its thread, as the console runs it), apprise deliveries to a loopback sink, and a
fault-injecting endpoint that reports the version it serves. The endpoint has no deploy hook here
(the alias moves, nothing is redeployed); `test_auto_rollback_e2e.py` redeploys a real server.

Every test promotes v3 of `iris` (production was v2) as `alice`, then breaks the endpoint: its `down`
alert about v3 is what an automatic rollback answers (or, for the guards, must not)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlops_console.config import Settings, load_settings
from mlops_console.core.auto_rollback import AutoRollback, windows
from mlops_console.core.engine_thread import EngineThread
from mlops_console.core.promotion import Promoter
from mlops_console.core.registry import RegistryClient
from mlops_console.core.store import Store
from tests._loopback import FaultServer, Sink, wait_for
from tests.fixtures_mlflow import MlflowRegistry

CLI = [sys.executable, "-m", "mlops_console"]


@dataclass
class Rig:
    root: Path
    registry: MlflowRegistry
    endpoint: FaultServer
    sink: Sink
    settings: Settings
    store: Store
    engine: EngineThread | None = None

    @property
    def config(self) -> Path:
        return self.root / "console.toml"

    def client(self) -> RegistryClient:
        return RegistryClient(self.settings.registry)

    def alias(self) -> str | None:
        return self.client().alias_version("iris", "production")

    def promote(self, version: str = "3", actor: str = "alice") -> None:
        promoter = Promoter(self.settings, self.store, self.client())
        result = promoter.apply(promoter.plan_promote("iris", version), actor=actor, reason="new model")
        assert result.changed, result.message

    def start(self, *, read_only: bool = False) -> EngineThread:
        self.engine = EngineThread(
            self.settings, lambda _snapshot: None, store=self.store, read_only=read_only
        )
        self.engine.start()
        return self.engine

    @property
    def runner(self) -> AutoRollback:
        assert self.engine is not None and self.engine.engine is not None
        runner = self.engine.engine.auto_rollback
        assert runner is not None
        return runner

    def break_endpoint(self) -> int:
        """The endpoint fails every probe; returns the id of the `down` alert about v3 once it fires."""
        wait_for(
            lambda: (
                self.engine is not None
                and self.engine.engine is not None
                and self.engine.engine.endpoints["iris-prod"].served_version == "3"
            ),
            timeout=30,
            what="the engine to see v3 served",
        )
        self.endpoint.faults.mode = "error"
        alert = wait_for(lambda: self._down_alert(), timeout=30, what="the down alert about v3")
        return int(alert)

    def _down_alert(self) -> int | None:
        rows = self.store.query("SELECT id FROM alerts WHERE rule='down' AND version='3' ORDER BY id")
        return rows[-1]["id"] if rows else None

    def rounds_pass(self, count: int = 3) -> None:
        """Wait until the engine's automatic rollback has looked `count` more times."""
        wait_for(
            lambda: (
                self.engine is not None
                and self.engine.engine is not None
                and self.engine.engine.auto_rollback is not None
            ),
            timeout=30,
            what="auto rollback running",
        )
        target = self.runner.rounds + count
        wait_for(lambda: self.runner.rounds >= target, timeout=30, what=f"{count} rounds")

    def rollbacks(self) -> list[tuple[str, str, str | None, str | None]]:
        return [
            (r.actor, r.result, r.from_version, r.to_version)
            for r in reversed(self.store.list_audit(model="iris", action="rollback"))
        ]

    def auto_pages(self) -> list[str]:
        return [t for t in self.sink.titles() if t.startswith("[AUTO-ROLLBACK")]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, "--config", str(self.config), *args], capture_output=True, text=True, timeout=120
        )


def write_config(root: Path, tracking_uri: str, url: str, sink_url: str, extra: str = "") -> Path:
    config = root / "console.toml"
    config.write_text(
        textwrap.dedent(f"""
        [registry]
        tracking_uri = "{tracking_uri}"
        [store]
        path = "{root / "console.db"}"
        [[endpoints]]
        name = "iris-prod"
        url = "{url}"
        model = "iris"
        alias = "production"
        interval = 0.3
        timeout = 1.0
        [[notifications]]
        url = "{sink_url}"
        [[auto_rollback]]
        model = "iris"
        alias = "production"
        watch = "10m"
        """)
        + extra
    )
    return config


@pytest.fixture
def rig(mlflow_registry: MlflowRegistry, tmp_path: Path) -> Iterator[Rig]:
    endpoint = FaultServer()
    endpoint.version = "3"
    endpoint.start()
    sink = Sink().start()
    config = write_config(tmp_path, mlflow_registry.tracking_uri, endpoint.url, sink.url)
    settings = load_settings(config)
    rig = Rig(tmp_path, mlflow_registry, endpoint, sink, settings, Store(settings.store.path))
    try:
        yield rig
    finally:
        if rig.engine is not None:
            rig.engine.stop(timeout=20)
        endpoint.stop()
        sink.stop()


def test_a_firing_rule_after_a_promote_rolls_back_once_pages_once_and_audits(rig: Rig) -> None:
    rig.promote()
    assert rig.alias() == "3"
    rig.start()
    alert_id = rig.break_endpoint()

    wait_for(lambda: rig.auto_pages(), timeout=30, what="the automatic rollback's page")
    assert rig.alias() == "2"
    assert rig.rollbacks() == [("auto-rollback", "ok", "3", "2")]
    [rollback] = rig.store.list_audit(model="iris", action="rollback")
    assert rollback.reason is not None and rollback.reason.startswith(f"alert #{alert_id} down on iris-prod")
    [page] = [m for m in rig.sink.received if m["title"].startswith("[AUTO-ROLLBACK")]
    assert page["title"] == "[AUTO-ROLLBACK] iris production: v3 -> v2, nothing redeployed"
    assert f"Why: alert #{alert_id}" in page["message"] and "Evidence:" in page["message"]
    assert f"Audit #{rollback.id}" in page["message"]
    # The triggering alert links to it: a line of its timeline, and the page is queued with it.
    events = [e for e in rig.store.events(alert_id) if e.kind == "auto_rollback"]
    assert [e.note for e in events] == ["rolled back iris production v3 -> v2, nothing redeployed"]
    assert any(n.kind == "auto_rollback" for n in rig.store.notifications_for(alert_id))
    [decision] = rig.store.auto_rollback_decisions()
    assert (decision.state, decision.alert_id, decision.audit_id) == ("rolled_back", alert_id, rollback.id)

    # The window is spent: the alias's latest change is the rollback, and the decision is taken.
    assert windows(rig.settings, rig.store) == []
    rig.rounds_pass()
    assert rig.rollbacks() == [("auto-rollback", "ok", "3", "2")] and len(rig.auto_pages()) == 1


def test_one_decision_per_promote_even_when_the_rule_fires_again(rig: Rig) -> None:
    """The previous version is not READY: refused, paged once, and a second firing in the same window
    (the promote is still the alias's latest change) neither tries again nor pages again."""
    rig.registry.set_status("iris", "2", "FAILED_REGISTRATION")
    rig.promote()
    rig.start()
    first = rig.break_endpoint()
    wait_for(lambda: rig.auto_pages(), timeout=30, what="the refusal's page")
    assert rig.auto_pages() == ["[AUTO-ROLLBACK REFUSED] iris production v3"]
    page = next(m for m in rig.sink.received if m["title"].startswith("[AUTO-ROLLBACK"))
    assert "not READY" in page["message"] and "needs a person" in page["message"]
    assert rig.alias() == "3"
    assert rig.rollbacks() == [("auto-rollback", "refused", "3", "2")]

    # It recovers, resolves, and fails again: a new alert about v3, inside the same window.
    rig.endpoint.faults.mode = "ok"
    wait_for(
        lambda: rig.store.get_alert(first).state == "resolved", timeout=30, what="the first alert to resolve"
    )
    rig.registry.set_status("iris", "2", "READY")  # a rollback could go ahead now: the decision stands
    rig.endpoint.faults.mode = "error"
    wait_for(lambda: (rig._down_alert() or 0) > first, timeout=30, what="a second down alert about v3")
    rig.rounds_pass()
    assert rig.alias() == "3"
    assert rig.rollbacks() == [("auto-rollback", "refused", "3", "2")]
    assert len(rig.auto_pages()) == 1
    assert len(windows(rig.settings, rig.store)) == 1  # still under watch, but decided


def test_a_read_only_console_never_rolls_back(rig: Rig) -> None:
    rig.promote()
    rig.start(read_only=True)
    alert_id = rig.break_endpoint()
    wait_for(lambda: any("[FIRING]" in t for t in rig.sink.titles()), timeout=30, what="the down page")
    rig.rounds_pass()
    assert rig.alias() == "3" and rig.rollbacks() == [] and rig.auto_pages() == []
    assert rig.store.auto_rollback_decisions() == []
    assert [e for e in rig.store.events(alert_id) if e.kind == "auto_rollback"] == []


def test_an_engine_without_the_lease_never_rolls_back(rig: Rig) -> None:
    """A firing alert about v3 is in the store (written by the lease holder); an engine that does not
    hold the lease cannot claim the decision, however its own check answers."""
    rig.promote()
    rig.start(read_only=True)  # the lease holder: probes and fires, changes nothing
    alert_id = rig.break_endpoint()
    outsider = AutoRollback(rig.settings, rig.store, owner="someone-else", may_act=lambda: True)
    assert outsider.round() == 0
    assert rig.alias() == "3" and rig.rollbacks() == [] and rig.store.auto_rollback_decisions() == []
    # The same round by the lease holder's owner does decide (the guard is the lease, nothing else).
    assert rig.engine is not None and rig.engine.engine is not None
    holder = AutoRollback(rig.settings, rig.store, owner=rig.engine.engine.owner, may_act=lambda: True)
    assert holder.round() == 1
    assert rig.alias() == "2" and [d.alert_id for d in rig.store.auto_rollback_decisions()] == [alert_id]


def test_a_person_cancels_the_pending_automatic_rollback(rig: Rig) -> None:
    rig.promote()
    done = rig.cli("rollback", "iris", "--cancel-auto", "--by", "bob", "--reason", "expected blip", "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert (answer["ok"], answer["action"], answer["version"], answer["actor"]) == (
        True,
        "cancel_auto_rollback",
        "3",
        "bob",
    )
    [row] = rig.store.list_audit(action="cancel_auto_rollback")
    assert (row.actor, row.model, row.to_version, row.reason) == ("bob", "iris", "3", "expected blip")
    again = rig.cli("rollback", "iris", "--cancel-auto")
    assert again.returncode == 1 and "already decided: cancelled by bob" in again.stderr

    rig.start()
    rig.break_endpoint()
    rig.rounds_pass()
    assert rig.alias() == "3" and rig.rollbacks() == [] and rig.auto_pages() == []


def test_cancel_without_a_promote_under_watch_changes_nothing(rig: Rig) -> None:
    done = rig.cli("rollback", "iris", "--cancel-auto")
    assert done.returncode == 1 and "no promote of iris is under watch" in done.stderr
    assert rig.store.list_audit() == []
    other = rig.cli("rollback", "diabetes", "--cancel-auto")
    assert other.returncode == 1 and "no [[auto_rollback]] is configured for diabetes" in other.stderr


def test_an_alert_that_started_before_the_promote_does_not_count(rig: Rig) -> None:
    """The endpoint already served v3 and failed before the promote was recorded: the alert about v3
    is firing during the window, but the promote did not cause it."""
    rig.start()
    alert_id = rig.break_endpoint()
    rig.promote()
    rig.rounds_pass()
    assert rig.store.get_alert(alert_id).state == "firing"
    assert rig.alias() == "3" and rig.rollbacks() == [] and rig.auto_pages() == []
    assert len(windows(rig.settings, rig.store)) == 1


def test_an_alert_about_the_version_served_before_does_not_count(rig: Rig) -> None:
    """The alias moved to v3 but the endpoint still serves v2 (no deploy hook, or a restart still on
    the old version) and fails: that is not v3's fault."""
    rig.endpoint.version = "2"
    rig.promote()
    rig.start()
    wait_for(
        lambda: (
            rig.engine is not None
            and rig.engine.engine is not None
            and rig.engine.engine.endpoints["iris-prod"].served_version == "2"
        ),
        timeout=30,
        what="the engine to see v2 served",
    )
    rig.endpoint.faults.mode = "error"
    alert = wait_for(
        lambda: next((a for a in rig.store.list_alerts("firing") if a.rule == "down"), None),
        timeout=30,
        what="the down alert about v2",
    )
    assert alert.version == "2"
    rig.rounds_pass()
    assert rig.alias() == "3" and rig.rollbacks() == [] and rig.auto_pages() == []


def test_an_alert_under_a_maintenance_window_waits_for_the_window_to_end(rig: Rig) -> None:
    """People working on iris-prod break it on purpose: no automatic rollback while their window
    runs. Once they end it and the release still fails, the alert counts like any other."""
    rig.promote()
    window = rig.store.start_maintenance("iris-*", 3600, by="carol", reason="load test")
    other = rig.store.start_maintenance("diabetes-*", 3600, by="carol")
    rig.start()
    alert_id = rig.break_endpoint()
    rig.rounds_pass()
    assert rig.alias() == "3" and rig.rollbacks() == [] and rig.auto_pages() == []
    assert rig.store.auto_rollback_decisions() == []
    assert rig.store.get_alert(alert_id).state == "firing"

    rig.store.end_maintenance(window.id, by="carol")
    assert rig.store.maintenance_window(other.id).running()  # a window over other endpoints is no cover
    wait_for(lambda: rig.auto_pages(), timeout=30, what="the rollback after the window")
    assert rig.alias() == "2" and rig.rollbacks() == [("auto-rollback", "ok", "3", "2")]
    [decision] = rig.store.auto_rollback_decisions()
    assert decision.alert_id == alert_id


@pytest.mark.parametrize("moved", [False, True])
def test_a_decision_left_unfinished_by_a_killed_watcher_is_finished_once(rig: Rig, moved: bool) -> None:
    """A watcher claimed the decision and wrote its rollback's `pending` audit row, then was killed
    (-9): before asking the registry (`moved=False`) or right after the registry moved the alias
    (`moved=True`). The next lease holder finishes that decision: exactly one rollback, and no row
    left saying `pending`."""
    rig.promote()
    rig.start(read_only=True)
    alert_id = rig.break_endpoint()
    rig.engine.stop(timeout=20)  # type: ignore[union-attr]
    [promote] = rig.store.list_audit(model="iris", action="promote")
    assert rig.store.acquire_lease("killed-watcher", 60)
    assert rig.store.claim_auto_rollback(promote, alert_id=alert_id, owner="killed-watcher")
    pending = rig.store.add_audit(
        actor="auto-rollback",
        action="rollback",
        result="pending",
        model="iris",
        alias="production",
        from_version="3",
        to_version="2",
        reason=f"alert #{alert_id} down on iris-prod",
    )
    if moved:
        rig.client().set_alias("iris", "production", "2")
    rig.store.release_lease("killed-watcher")

    rig.start()
    wait_for(lambda: rig.auto_pages(), timeout=30, what="the finished rollback's page")
    rig.rounds_pass()
    assert rig.alias() == "2"
    assert len(rig.auto_pages()) == 1 and rig.auto_pages()[0].startswith("[AUTO-ROLLBACK] iris production")
    [decision] = rig.store.auto_rollback_decisions()
    assert decision.state == "rolled_back"
    rows = {r.id: r.result for r in rig.store.list_audit(model="iris", action="rollback")}
    if moved:
        assert rows == {pending: "ok"}  # recorded, not done again
    else:
        assert rows[pending] == "failed" and sorted(rows.values()) == ["failed", "ok"]
    assert "pending" not in rows.values()


def test_the_store_gives_one_decision_per_promote_and_only_to_the_lease_holder(tmp_path: Path) -> None:
    """Two engines racing (or one restarted) cannot both claim a promote; a person cannot cancel what
    was decided, nor an engine decide what a person cancelled."""
    store = Store(tmp_path / "console.db")
    promote_id = store.add_audit(
        actor="alice",
        action="promote",
        result="ok",
        model="iris",
        alias="production",
        from_version="2",
        to_version="3",
    )
    [promote] = store.list_audit(action="promote")
    assert promote.id == promote_id
    assert not store.claim_auto_rollback(promote, alert_id=1, owner="a")  # nobody holds the lease
    assert store.acquire_lease("a", 60)
    assert not store.claim_auto_rollback(promote, alert_id=1, owner="b")  # b does not hold it
    assert store.claim_auto_rollback(promote, alert_id=1, owner="a")
    assert not store.claim_auto_rollback(promote, alert_id=2, owner="a")
    assert store.cancel_auto_rollback(promote, actor="bob", reason=None) is None
    assert [(d.state, d.alert_id, d.actor) for d in store.auto_rollback_decisions()] == [("deciding", 1, "a")]
    assert store.list_audit(action="cancel_auto_rollback") == []

    store.release_auto_rollback(promote.id)  # given back before the registry was asked
    assert store.cancel_auto_rollback(promote, actor="bob", reason="known blip") is not None
    assert not store.claim_auto_rollback(promote, alert_id=1, owner="a")
    assert [(d.state, d.actor) for d in store.auto_rollback_decisions()] == [("cancelled", "bob")]


def test_bad_auto_rollback_config_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, "sqlite:////nonexistent/mlflow.db", "http://127.0.0.1:9", "json://127.0.0.1:9/x"
    )
    good = load_settings(config)
    [entry] = good.auto_rollback
    assert (entry.watch, entry.rules) == (
        600.0,
        ["down", "error_ratio", "latency_p95", "invalid_prediction", "feature_drift"],
    )
    text = config.read_text()
    config.write_text(
        text.replace('watch = "10m"', 'watch = "soon"\nrules = ["down", "nope"]')
        + '\n[[auto_rollback]]\nmodel = "fraud"\n[[auto_rollback]]\nmodel = "iris"\n'
    )
    done = subprocess.run([*CLI, "config", "check", str(config)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.splitlines() + done.stdout.splitlines()
    for expected in (
        "auto_rollback[0].watch: expected a duration",
        "auto_rollback[0].rules: unknown rule 'nope'",
    ):
        assert any(line.startswith(f"{config}: {expected}") for line in lines), lines
    config.write_text(text + '\n[[auto_rollback]]\nmodel = "fraud"\n[[auto_rollback]]\nmodel = "iris"\n')
    done = subprocess.run([*CLI, "config", "check", str(config)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert (
        f"{config}: auto_rollback[1].model: no endpoint serves 'fraud' through alias 'production'"
        in done.stderr
    )
    assert f"{config}: auto_rollback[2].model: 'iris' alias 'production' is watched twice" in done.stderr
