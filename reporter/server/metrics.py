"""Prometheus text exposition: this worker's request counters and the database's totals."""

from __future__ import annotations

import os
import threading
from collections import Counter


class Metrics:
    """Counters of one worker process (each carries a ``worker`` label with its pid)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.uploads: Counter[tuple[str, str]] = Counter()     # (endpoint, outcome)
        self.rejections: Counter[int] = Counter()              # HTTP status
        self.bytes_received = 0

    def upload(self, endpoint: str, outcome: str, size: int = 0) -> None:
        """Count one upload attempt."""
        with self._lock:
            self.uploads[(endpoint, outcome)] += 1
            self.bytes_received += size

    def rejected(self, status: int) -> None:
        """Count one refused request."""
        with self._lock:
            self.rejections[status] += 1

    def render(self, totals: dict[str, int]) -> str:
        """The text format (version 0.0.4)."""
        pid = os.getpid()
        lines = ["# HELP crashkit_uploads_total Upload requests handled by this worker, by outcome.",
                 "# TYPE crashkit_uploads_total counter"]
        with self._lock:
            for (endpoint, outcome), n in sorted(self.uploads.items()):
                lines.append(f'crashkit_uploads_total{{worker="{pid}",endpoint="{endpoint}",outcome="{outcome}"}} {n}')
            lines += ["# HELP crashkit_rejected_total Requests refused by this worker, by HTTP status.",
                      "# TYPE crashkit_rejected_total counter"]
            for status, n in sorted(self.rejections.items()):
                lines.append(f'crashkit_rejected_total{{worker="{pid}",status="{status}"}} {n}')
            lines += ["# HELP crashkit_received_bytes_total Upload bytes accepted by this worker.",
                      "# TYPE crashkit_received_bytes_total counter",
                      f'crashkit_received_bytes_total{{worker="{pid}"}} {self.bytes_received}']
        help_ = {"reports_counted": ("counter", "Reports ever counted in buckets (survives pruning)."),
                 "reports_stored": ("gauge", "Reports currently stored."),
                 "buckets": ("gauge", "Buckets."),
                 "stored_bytes": ("gauge", "Bytes of stored archives and uReports.")}
        for key, value in totals.items():
            kind, text = help_[key]
            lines += [f"# HELP crashkit_{key} {text}", f"# TYPE crashkit_{key} {kind}", f"crashkit_{key} {value}"]
        return "\n".join(lines) + "\n"
