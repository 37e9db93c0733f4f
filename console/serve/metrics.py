"""Prometheus metrics of one scoring server, in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

KNOWN_HANDLERS = frozenset(
    {"/ping", "/health", "/version", "/invocations", "/metrics", "/model-info", "/chaos"}
)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A regressor's outputs would make one series per request; labels beyond this fold into "other".
MAX_LABELS = 50

__all__ = ["CONTENT_TYPE_LATEST", "ServeMetrics"]


class ServeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests",
            "HTTP requests by handler, method and status",
            ("handler", "method", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by handler",
            ("handler",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "model_predictions",
            "Predictions by predicted class label (classifiers only)",
            ("label",),
            registry=self.registry,
        )
        self.logged_rows = Counter(
            "inference_log_rows",
            "Scored rows by what became of them in the inference log "
            "(written, sampled_out, dropped, unsplittable, error)",
            ("outcome",),
            registry=self.registry,
        )
        self._labels: set[str] = set()

    def observe_logged(self, outcome: str, rows: int) -> None:
        """Called from the inference log's writer thread (prometheus_client counters are thread-safe)."""
        self.logged_rows.labels(outcome).inc(rows)

    @staticmethod
    def handler_label(path: str) -> str:
        # Unknown paths (scanners, typos) must not create unbounded series.
        return path if path in KNOWN_HANDLERS else "other"

    def observe_request(self, path: str, method: str, status: int, seconds: float) -> None:
        handler = self.handler_label(path)
        self.requests.labels(handler, method, str(status)).inc()
        self.latency.labels(handler).observe(seconds)

    def observe_predictions(self, predictions: object) -> None:
        """Count class labels; float outputs (regression) are not labels and are skipped."""
        if not isinstance(predictions, list):
            return
        for p in predictions:
            if isinstance(p, bool | int | str):
                label = str(p)
            else:
                continue
            if label not in self._labels:
                if len(self._labels) >= MAX_LABELS:
                    label = "other"
                else:
                    self._labels.add(label)
            self.predictions.labels(label).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
