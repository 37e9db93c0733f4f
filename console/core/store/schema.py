"""The store's tables, as a list of migrations applied in order (`PRAGMA user_version` counts them)."""

from __future__ import annotations

# Each migration runs once, in order, inside one transaction; PRAGMA user_version remembers progress.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        rule TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        model TEXT,
        version TEXT,
        severity TEXT NOT NULL,
        state TEXT NOT NULL,
        summary TEXT NOT NULL,
        value REAL,
        threshold REAL,
        started_at REAL NOT NULL,
        resolved_at REAL,
        acked_by TEXT,
        acked_at REAL,
        ack_note TEXT,
        silenced_until REAL,
        silenced_by TEXT,
        flapping INTEGER NOT NULL DEFAULT 0,
        last_notified_at REAL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX alerts_state_started ON alerts(state, started_at DESC);
    CREATE INDEX alerts_started ON alerts(started_at DESC);
    CREATE INDEX alerts_fingerprint ON alerts(fingerprint, started_at DESC);
    CREATE INDEX alerts_endpoint ON alerts(endpoint, started_at DESC);

    CREATE TABLE alert_events (
        id INTEGER PRIMARY KEY,
        alert_id INTEGER NOT NULL REFERENCES alerts(id),
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        actor TEXT,
        note TEXT,
        data TEXT
    );
    CREATE INDEX alert_events_alert ON alert_events(alert_id, at);

    CREATE TABLE notifications (
        id INTEGER PRIMARY KEY,
        alert_id INTEGER REFERENCES alerts(id),
        kind TEXT NOT NULL,
        channel TEXT NOT NULL,
        target TEXT NOT NULL,
        severity TEXT NOT NULL,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        created_at REAL NOT NULL,
        sent_at REAL,
        last_error TEXT
    );
    CREATE INDEX notifications_due ON notifications(status, next_attempt_at);
    CREATE INDEX notifications_alert ON notifications(alert_id);

    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        notification_id INTEGER NOT NULL REFERENCES notifications(id),
        at REAL NOT NULL,
        ok INTEGER NOT NULL,
        duration_ms REAL,
        error TEXT
    );
    CREATE INDEX deliveries_notification ON deliveries(notification_id);

    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        model TEXT,
        alias TEXT,
        from_version TEXT,
        to_version TEXT,
        reason TEXT,
        result TEXT NOT NULL,
        detail TEXT,
        alert_id INTEGER,
        endpoint TEXT
    );
    CREATE INDEX audit_at ON audit(at DESC);
    CREATE INDEX audit_model ON audit(model, alias, at DESC);

    CREATE TABLE lease (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        pid INTEGER,
        host TEXT,
        acquired_at REAL NOT NULL,
        expires_at REAL NOT NULL
    );

    CREATE TABLE endpoint_status (
        name TEXT PRIMARY KEY,
        updated_at REAL NOT NULL,
        data TEXT NOT NULL
    );

    CREATE TABLE rollups (
        endpoint TEXT NOT NULL,
        minute INTEGER NOT NULL,
        probes INTEGER NOT NULL,
        failures INTEGER NOT NULL,
        p50 REAL, p95 REAL, p99 REAL,
        rps REAL,
        error_ratio REAL,
        PRIMARY KEY (endpoint, minute)
    );
    """,
    # 2: the lease holder's own health (running, degraded, stalled...), for followers and `status`.
    """
    CREATE TABLE engine_health (
        owner TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        reason TEXT,
        updated_at REAL NOT NULL
    );
    """,
    # 3: a notification being sent is marked first (when, by whom), so a watcher that dies between the
    # delivery and its record leaves a trace; `interrupted` counts sends cut off that way.
    """
    ALTER TABLE notifications ADD COLUMN sending_at REAL;
    ALTER TABLE notifications ADD COLUMN sending_by TEXT;
    ALTER TABLE notifications ADD COLUMN interrupted INTEGER NOT NULL DEFAULT 0;
    """,
    # 4: what each endpoint's detectors learnt (baselines, recent verdicts), so a restarted or
    # taking-over engine continues with them instead of learning from scratch.
    """
    CREATE TABLE detector_state (
        endpoint TEXT PRIMARY KEY,
        updated_at REAL NOT NULL,
        data TEXT NOT NULL
    );
    """,
    # 5: model quality. Where the engine stopped reading each endpoint's inference log (and what it
    # learned there: references of versions, the stuck detector), and one row of aggregates per
    # evaluation (scores, bins, counts; never an input value).
    """
    CREATE TABLE quality_state (
        endpoint TEXT PRIMARY KEY,
        log TEXT NOT NULL,
        offset TEXT NOT NULL,
        learned TEXT NOT NULL DEFAULT '{}',
        updated_at REAL NOT NULL
    );

    CREATE TABLE quality_windows (
        id INTEGER PRIMARY KEY,
        endpoint TEXT NOT NULL,
        model TEXT,
        version TEXT,
        evaluated_at REAL NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX quality_windows_endpoint ON quality_windows(endpoint, evaluated_at DESC);
    """,
    # 6: history. Each endpoint-minute also keeps its latency count, mean, min and max and the request
    # count behind its error ratio (the rollups are the downsampled history, pruned by
    # `store.history`); the index serves the pruning by age.
    """
    ALTER TABLE rollups ADD COLUMN samples INTEGER;
    ALTER TABLE rollups ADD COLUMN latency_mean REAL;
    ALTER TABLE rollups ADD COLUMN latency_min REAL;
    ALTER TABLE rollups ADD COLUMN latency_max REAL;
    ALTER TABLE rollups ADD COLUMN requests REAL;
    CREATE INDEX rollups_minute ON rollups(minute);
    """,
    # automatic rollbacks: one row per promote an automatic rollback decided about (the promote's audit
    # id is the key, so at most one decision per promote whoever takes it and however often a watcher
    # restarts). `deciding` is written before the registry is asked: a watcher killed after that finds
    # it on restart and finishes that same decision instead of taking a second one.
    """
    CREATE TABLE auto_rollbacks (
        promote_id INTEGER PRIMARY KEY,
        model TEXT NOT NULL,
        alias TEXT NOT NULL,
        version TEXT,
        previous TEXT,
        state TEXT NOT NULL,
        alert_id INTEGER,
        actor TEXT NOT NULL,
        decided_at REAL NOT NULL,
        finished_at REAL,
        audit_id INTEGER,
        note TEXT
    );
    CREATE INDEX auto_rollbacks_state ON auto_rollbacks(state);
    """,
    # maintenance windows: no pages for alerts of endpoints matching `endpoints` (a GLOB) until
    # `ends_at` (moved to the end time when ended early). Each alert keeps the runbook it fired with
    # ('' for none; NULL: stored before this, looked up from the config).
    """
    ALTER TABLE alerts ADD COLUMN runbook TEXT;

    CREATE TABLE maintenance (
        id INTEGER PRIMARY KEY,
        endpoints TEXT NOT NULL,
        reason TEXT,
        created_by TEXT NOT NULL,
        created_at REAL NOT NULL,
        ends_at REAL NOT NULL,
        ended_by TEXT,
        ended_at REAL
    );
    CREATE INDEX maintenance_ends ON maintenance(ends_at);
    """,
    # a status row's latency and throughput histories as little-endian doubles (NULL: they are in
    # `data`); see `store.status` for why
    """
    ALTER TABLE endpoint_status ADD COLUMN histories BLOB;
    """,
]


def statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
