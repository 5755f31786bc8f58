"""Benchmark the item store's search against raw boto3 on the same moto server, in the same run.

    .venv/bin/python scripts/bench_store.py [--items 10000] [--json PATH]

It puts N items (namespaces `bench/g0` .. `bench/g9`), then times a search of all of them that
matches one in ten: cold (a new, empty index: one LIST per 1,000 keys, then a HEAD and a GET per
item), warm (the same store again: LISTs only), and warm from a reopened index (a new Store on
the same cache directory, as a new process would). Baselines, with boto3 on the same server:
listing the same N keys (for the warm searches) and listing them then GETting every object
with as many threads as the store uses (for the cold search). Requests are counted from moto's
access log, so both sides are counted the same way. Ratio = baseline seconds / store seconds:
relative speed, higher is better, 1.0 is as fast as the raw requests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
)  # before boto3 is imported

import boto3  # noqa: E402
from servers.moto import start_moto  # noqa: E402
from servers.process import ServerProcess  # noqa: E402

from objfs.storage.registry import open_location  # noqa: E402
from objfs.storage.s3 import S3Storage  # noqa: E402
from objfs.store import Store  # noqa: E402
from objfs.store.store import PARALLEL  # noqa: E402

BUCKET = "objfs-bench-store"
PREFIX = "items"
ACCESS_LINE = re.compile(r'"(GET|PUT|HEAD|POST|DELETE) (\S+) HTTP/[\d.]+"')
ANSI = re.compile(r"\x1b\[[0-9;]*m")
"""moto colours the lines of error answers (a HEAD's 404) with terminal escapes."""


@dataclass
class Row:
    figure: str
    seconds: float
    requests: dict[str, int]
    baseline: str = ""
    baseline_seconds: float | None = None
    baseline_requests: dict[str, int] | None = None

    @property
    def ratio(self) -> float | None:
        return None if self.baseline_seconds is None else self.baseline_seconds / self.seconds


class Requests:
    """Requests moto answered, by kind, from the access line its web server logs for each."""

    def __init__(self, server: ServerProcess) -> None:
        self.path = server.log_dir / "server.log"

    @contextlib.contextmanager
    def window(self) -> Iterator[Counter[str]]:
        counts: Counter[str] = Counter()
        offset = self.path.stat().st_size
        yield counts
        time.sleep(0.3)  # moto logs a line as it answers; let the last one land
        with open(self.path, "rb") as log:
            log.seek(offset)
            text = ANSI.sub("", log.read().decode(errors="replace"))
        counts.update(_kind(method, target) for method, target in ACCESS_LINE.findall(text))

    def measure(self, action: Callable[[], Any]) -> tuple[float, dict[str, int], Any]:
        with self.window() as counts:
            started = time.perf_counter()
            result = action()
            seconds = time.perf_counter() - started
        return seconds, dict(counts), result


def _kind(method: str, target: str) -> str:
    return "LIST" if method == "GET" and "list-type" in target else method


def put_items(store: Store, count: int) -> None:
    def put(n: int) -> None:
        store.put_item(["bench", f"g{n % 10}"], f"item-{n:05d}", {"n": n, "name": f"Item {n}", "tags": ["x"]})

    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(put, range(count)))


def raw_list(client: Any) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{PREFIX}/")
    return [entry["Key"] for page in pages for entry in page.get("Contents", [])]


def raw_list_and_get(client: Any) -> int:
    def get(key: str) -> int:
        return len(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())

    with ThreadPoolExecutor(PARALLEL) as pool:
        return sum(pool.map(get, raw_list(client)))


def search(store: Store, count: int) -> int:
    result = store.search_items(["bench"], filter={"n": {"$lt": count // 10}}, sort="-n", limit=5)
    if result.total != count // 10:
        raise RuntimeError(f"the search found {result.total} items, not {count // 10}")
    return result.total


def run(server: ServerProcess, count: int, workdir: Path) -> list[Row]:
    requests = Requests(server)
    client = boto3.client("s3", endpoint_url=server.endpoint)
    client.create_bucket(Bucket=BUCKET)
    storage = _storage(server.endpoint)
    rows: list[Row] = []
    with Store(storage, PREFIX, str(workdir / "writer")) as writer:
        seconds, counts, _ = requests.measure(lambda: put_items(writer, count))
        rows.append(Row(f"put {count} items ({PARALLEL} threads)", seconds, counts))
    list_s, list_n, keys = requests.measure(lambda: raw_list(client))
    if len(keys) != count:
        raise RuntimeError(f"boto3 listed {len(keys)} keys, not {count}")
    get_s, get_n, _ = requests.measure(lambda: raw_list_and_get(client))
    with Store(storage, PREFIX, str(workdir / "reader")) as reader:
        for figure in ("cold search", "warm search"):
            seconds, counts, _ = requests.measure(lambda: search(reader, count))
            cold = figure.startswith("cold")
            base = ("boto3 list + GET all", get_s, get_n) if cold else ("boto3 list", list_s, list_n)
            rows.append(Row(figure, seconds, counts, *base))
    with Store(storage, PREFIX, str(workdir / "reader")) as reopened:
        seconds, counts, _ = requests.measure(lambda: search(reopened, count))
        rows.append(Row("warm search, index reopened", seconds, counts, "boto3 list", list_s, list_n))
    storage.close()
    client.close()
    return rows


def _storage(endpoint: str) -> S3Storage:
    settings = {
        "STORAGE_TYPE": "s3",
        "S3_ENDPOINT": endpoint,
        "S3_BUCKET_NAME": BUCKET,
        "S3_REGION": "us-east-1",
    }
    storage = open_location(None, base=settings).storage
    assert isinstance(storage, S3Storage)
    return storage


def _requests(counts: dict[str, int] | None) -> str:
    if counts is None:
        return "-"
    return " ".join(f"{kind}={n}" for kind, n in sorted(counts.items())) or "none"


def table(rows: list[Row]) -> str:
    header = ("figure", "store s", "store requests", "baseline", "base s", "base requests", "ratio")
    body = [header] + [
        (
            row.figure,
            f"{row.seconds:.2f}",
            _requests(row.requests),
            row.baseline or "-",
            "-" if row.baseline_seconds is None else f"{row.baseline_seconds:.2f}",
            _requests(row.baseline_requests),
            "-" if row.ratio is None else f"{row.ratio:.2f}",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in body) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in body
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000, help="items to put and search (default 10000)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="objfs-bench-store-"))
    server = start_moto()
    try:
        rows = run(server, args.items, workdir)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(table(rows))
    print(f"\n{args.items} items on moto; ratio = baseline seconds / store seconds (higher is better)")
    if args.json:
        args.json.write_text(
            json.dumps([asdict(row) | {"ratio": row.ratio} for row in rows], indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
