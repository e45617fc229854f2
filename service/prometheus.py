"""The service's Prometheus metrics."""

from __future__ import annotations


class ServiceMetrics:
    """Prometheus metrics of one service instance, in its own registry."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "refinery_requests_total", "HTTP requests", ["endpoint", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "refinery_request_seconds",
            "Request latency",
            ["endpoint"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.batch_size = Histogram(
            "refinery_batch_texts",
            "Texts per model forward pass",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        )
        self.errors = Counter(
            "refinery_errors_total", "Requests that failed inside the service", registry=self.registry
        )
        self.reloads = Counter("refinery_model_reloads_total", "Model swaps", registry=self.registry)
        self.predictions = Counter("refinery_predictions_total", "Texts classified", ["label"], registry=self.registry)
        self.refused = Counter(
            "refinery_refused_texts_total",
            "Texts the model's recipe refused (empty or too long)",
            registry=self.registry,
        )
        self.generated_tokens = Counter(
            "refinery_generated_tokens_total", "Tokens generative models answered", ["dataset"], registry=self.registry
        )
        self.first_token = Histogram(
            "refinery_time_to_first_token_seconds",
            "A stream's wait for its first text",
            registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.streams_failed = Counter(
            "refinery_streams_failed_total", "Streamed answers whose generation failed", registry=self.registry
        )
        self.model = Gauge(
            "refinery_model_info",
            "The model each dataset is served by (always 1)",
            ["dataset", "version"],
            registry=self.registry,
        )
        self.log_backlog = Gauge(
            "refinery_log_spool_bytes", "Prediction-log bytes on disk, not yet in the lake", registry=self.registry
        )
        self.log_dropped = Gauge(
            "refinery_log_dropped_rows",
            "Prediction-log rows dropped because the spool was full",
            registry=self.registry,
        )

    def watch_spool(self, spool) -> None:
        """Report a prediction log's spool: its backlog and the rows it had to drop."""
        self.log_backlog.set_function(lambda: spool.size)
        self.log_dropped.set_function(lambda: spool.dropped)
