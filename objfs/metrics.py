"""What a mount has done, as Prometheus metrics: FUSE operations, backend requests, cache use,
bytes moved and dirty bytes waiting.

One registry per process (a daemon serves one mount), so the layers record into it without
being handed an object; `--metrics-addr` serves it over HTTP, and `objfs stats` reads the same
figures through the mount itself (the root's `user.objfs.stats` attribute), with no port open.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

STATS_ATTRIBUTE = "user.objfs.stats"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

REGISTRY = CollectorRegistry()
FUSE_REQUESTS = Counter("objfs_fuse_requests", "FUSE requests served", ["operation"], registry=REGISTRY)
FUSE_ERRORS = Counter(
    "objfs_fuse_errors", "FUSE requests answered with an error", ["operation", "errno"], registry=REGISTRY
)
FUSE_SECONDS = Histogram(
    "objfs_fuse_request_seconds",
    "time to serve a FUSE request",
    ["operation"],
    registry=REGISTRY,
    buckets=LATENCY_BUCKETS,
)
BACKEND_REQUESTS = Counter(
    "objfs_backend_requests", "requests sent to the storage service", ["operation"], registry=REGISTRY
)
BACKEND_ERRORS = Counter(
    "objfs_backend_errors", "storage requests that failed", ["operation", "error"], registry=REGISTRY
)
BACKEND_SECONDS = Histogram(
    "objfs_backend_request_seconds",
    "time of one storage request",
    ["operation"],
    registry=REGISTRY,
    buckets=LATENCY_BUCKETS,
)
CACHE_HITS = Counter("objfs_cache_hits", "blocks served from a cache", ["cache"], registry=REGISTRY)
CACHE_MISSES = Counter("objfs_cache_misses", "blocks fetched from the storage service", registry=REGISTRY)
BYTES_DOWNLOADED = Counter("objfs_downloaded_bytes", "bytes read from the storage service", registry=REGISTRY)
BYTES_UPLOADED = Counter("objfs_uploaded_bytes", "bytes sent to the storage service", registry=REGISTRY)
DIRTY_BYTES = Gauge("objfs_dirty_bytes", "bytes written but not yet stored in the bucket", registry=REGISTRY)


@contextmanager
def timed(histogram: Histogram, operation: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        histogram.labels(operation).observe(time.perf_counter() - started)


def track_dirty_bytes(measure: Callable[[], float]) -> None:
    """Read the dirty bytes from the filesystem when scraped, instead of updating on every write."""
    DIRTY_BYTES.set_function(measure)


def serve(address: str) -> None:
    """Serve /metrics on `HOST:PORT` in a thread of its own."""
    host, _, port = address.rpartition(":")
    start_http_server(int(port), addr=host or "127.0.0.1", registry=REGISTRY)


def snapshot() -> dict[str, object]:
    """Every sample by name, labelled ones as {"label=value,...": number}; histogram buckets left out."""
    figures: dict[str, object] = {}
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name.endswith(("_bucket", "_created")):
                continue
            if sample.labels:
                labels = ",".join(f"{name}={value}" for name, value in sorted(sample.labels.items()))
                figures.setdefault(sample.name, {})[labels] = sample.value  # type: ignore[index]
            else:
                figures[sample.name] = sample.value
    return figures


def snapshot_json() -> bytes:
    return json.dumps(snapshot(), sort_keys=True).encode()
