"""Benchmark objfs against the raw access it wraps, each figure next to its own baseline.

These machines are shared and noisy, so an absolute number says little: every objfs figure is
measured next to a baseline taken in the same run, against the same server, and reported as a
ratio (relative speed, higher is better). The S3 baseline is boto3 talking to the same moto
server; the local-folder baseline is the same operation on the folder itself.

    .venv/bin/python scripts/bench.py [--quick] [--latency-ms 20] [--size-mib N] [--json PATH]
                                      [--figures read,write,...] [--backends local,s3]

Everything it starts (moto, the delay proxy, mounts) is stopped, and its temporary directory
removed, however a figure ends. A figure that fails prints its error in its row; the rest run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_EC2_METADATA_DISABLED": "true",
}
os.environ.update(AWS_ENV)  # before boto3 is imported, for it and for every child process

import boto3  # noqa: E402
from boto3.s3.transfer import TransferConfig  # noqa: E402
from botocore.config import Config  # noqa: E402
from servers.moto import start_moto  # noqa: E402
from servers.process import ServerProcess  # noqa: E402

from objfs.mountpoint import fusermount, mounted_type, pidfile_for  # noqa: E402

MIB = 1024 * 1024
CHUNK = MIB
PART_SIZE = 8 * MIB
SMALL = 4096
BUCKET = "objfs-bench"
BIG_BASELINE = "big-baseline"
BIG_OBJFS = "big-objfs"
LIST_DIR = "listing"
SMALL_DIR = "small"
MOUNT_TIMEOUT = 120
UMOUNT_TIMEOUT = 600
DEFAULT_CACHE_SIZE = 1024 * MIB
"""objfs's default --cache-size; a larger file gets a larger cache so the warm re-read can hit."""


# -- results ---------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table: objfs's figure, its baseline, and how they compare."""

    figure: str
    backend: str
    unit: str = ""
    objfs: float | None = None
    baseline: float | None = None
    ratio: float | None = None
    target: str = "-"
    met: bool | None = None
    note: str = ""
    error: str | None = None
    objfs_requests: dict[str, int] | None = None
    baseline_requests: dict[str, int] | None = None


@dataclass(frozen=True)
class Target:
    """A goal and how to check a row against it."""

    text: str
    check: Callable[[Row], bool]


def ratio_at_least(threshold: float) -> Target:
    return Target(f"ratio>={threshold}", lambda row: row.ratio is not None and row.ratio >= threshold)


def value_at_most(threshold: float, unit: str) -> Target:
    return Target(f"<={threshold:g} {unit}", lambda row: row.objfs is not None and row.objfs <= threshold)


LISTING_REQUESTS = Target(
    "<=7 req, no HEAD",
    lambda row: row.objfs is not None and row.objfs <= 7 and not (row.objfs_requests or {}).get("HEAD"),
)


@dataclass
class Sample:
    """One timed run: wall seconds and, where the server can tell, the requests it caused."""

    seconds: float
    requests: Counter[str] | None = None


def finish(row: Row, target: Target | None) -> Row:
    if target is not None:
        row.target = target.text
        row.met = target.check(row) if row.error is None else None
    return row


def compare(
    figure: str,
    backend: str,
    ours: Sample,
    base: Sample,
    *,
    nbytes: int | None = None,
    target: Target | None = None,
    note: str = "",
) -> Row:
    """Throughput (MiB/s) when `nbytes` is given, else wall time; the ratio is always relative speed."""
    if nbytes is not None:
        row = Row(figure, backend, "MiB/s", nbytes / MIB / ours.seconds, nbytes / MIB / base.seconds)
        row.ratio = row.objfs / row.baseline
    else:
        row = Row(figure, backend, "s", ours.seconds, base.seconds, base.seconds / ours.seconds)
    row.note = "; ".join(filter(None, [note, _requests_note("objfs", ours), _requests_note("base", base)]))
    row.objfs_requests = dict(ours.requests) if ours.requests is not None else None
    row.baseline_requests = dict(base.requests) if base.requests is not None else None
    return finish(row, target)


def _requests_note(who: str, sample: Sample) -> str:
    if sample.requests is None:
        return ""
    counts = " ".join(f"{kind}={n}" for kind, n in sorted(sample.requests.items()))
    return f"{who} req: {counts or 'none'}"


# -- the machine -----------------------------------------------------------------------------


def drop_page_cache() -> bool:
    """Empty the kernel page cache, so a read comes from the disk or from objfs; False if refused."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def vm_hwm_mib(pid: int) -> float:
    """Peak resident memory of a process: the kernel keeps the high-water mark for us."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def pattern_chunk(index: int, base: bytes) -> bytes:
    """Chunk `index` of the benchmark data: random bytes stamped with the index, so no two are equal."""
    return index.to_bytes(8, "big") + base[8:]


def pattern_chunks(size: int, base: bytes) -> Iterator[bytes]:
    for index in range((size + CHUNK - 1) // CHUNK):
        yield pattern_chunk(index, base)[: size - index * CHUNK]


class PatternReader(io.RawIOBase):
    """The benchmark data as a non-seekable stream, so boto3 uploads it as it would a pipe."""

    def __init__(self, size: int, base: bytes) -> None:
        self.size, self.base, self.position = size, base, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view, filled = memoryview(buffer).cast("B"), 0
        while filled < len(view) and self.position < self.size:
            index, offset = divmod(self.position, CHUNK)
            piece = pattern_chunk(index, self.base)[offset : min(CHUNK, self.size - index * CHUNK)]
            piece = piece[: len(view) - filled]
            view[filled : filled + len(piece)] = piece
            filled += len(piece)
            self.position += len(piece)
        return filled


def write_file(path: Path, chunks: Iterator[bytes], *, fsync: bool = False) -> None:
    with open(path, "wb", buffering=0) as out:
        for chunk in chunks:
            out.write(chunk)
        if fsync:
            os.fsync(out.fileno())


def read_file(path: Path) -> int:
    """Read a file in 1 MiB chunks into one buffer (no allocation per chunk); return its size."""
    buffer, total = bytearray(CHUNK), 0
    with open(path, "rb", buffering=0) as source:
        while count := source.readinto(buffer):
            total += count
    return total


def expect(actual: int, wanted: int, what: str) -> None:
    if actual != wanted:
        raise RuntimeError(f"{what}: got {actual} bytes, expected {wanted}")


# -- request counting from moto's access log ---------------------------------------------------

ACCESS_LINE = re.compile(r'"(GET|PUT|HEAD|POST|DELETE) (\S+) HTTP/[\d.]+"')
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def classify(method: str, target: str) -> str | None:
    """The S3 operation a request line stands for; None for moto's own API."""
    if target.startswith("/moto-api"):
        return None
    query = target.partition("?")[2]
    kinds = {
        "GET": "LIST" if "list-type" in query else "LIST_UPLOADS" if "uploads" in query else "GET",
        "PUT": "UPLOAD_PART" if "partNumber" in query else "PUT",
        "POST": "CREATE_MPU" if "uploads" in query else "COMPLETE_MPU" if "uploadId" in query else "POST",
        "DELETE": "ABORT_MPU" if "uploadId" in query else "DELETE",
    }
    return kinds.get(method, method)


class RequestLog:
    """Counts requests by type from the lines moto's web server logs for each one it answers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.enabled = True

    def count_since(self, offset: int) -> Counter[str]:
        with open(self.path, "rb") as log:
            log.seek(offset)
            text = ANSI.sub("", log.read().decode(errors="replace"))
        found = (classify(*match.groups()) for match in ACCESS_LINE.finditer(text))
        return Counter(kind for kind in found if kind is not None)

    @contextlib.contextmanager
    def window(self) -> Iterator[Counter[str] | None]:
        """Yield a Counter that holds, on exit, the requests answered inside the block (None if off)."""
        if not self.enabled:
            yield None
            return
        counts: Counter[str] = Counter()
        offset = self.path.stat().st_size
        yield counts
        time.sleep(0.2)  # the line is logged before the body is sent; leave it time to land
        counts.update(self.count_since(offset))


# -- backends: where objects live, and the baseline way to reach them --------------------------


class Backend(Protocol):
    """What the figures need from a storage: a source to mount and baseline operations."""

    label: str
    source: str
    mount_args: list[str]

    def counting(self) -> contextlib.AbstractContextManager[Counter[str] | None]: ...
    def write_big(self, key: str, size: int, base: bytes) -> None: ...
    def read_big(self, key: str) -> int: ...
    def put_small(self, keys: list[str], data: bytes) -> None: ...
    def get_small(self, keys: list[str]) -> int: ...
    def list_dir(self, prefix: str) -> int: ...
    def size_of(self, key: str) -> int | None: ...
    def populate(self, prefix: str, count: int, data: bytes) -> list[str]: ...


def small_keys(prefix: str, count: int) -> list[str]:
    return [f"{prefix}/f{index:05d}" for index in range(count)]


def s3_client(endpoint: str) -> Any:
    """A client configured as objfs configures its own: checksums only where S3 demands them."""
    config = Config(
        max_pool_connections=32,
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.client("s3", endpoint_url=endpoint, config=config)


@dataclass
class S3Backend:
    """A bucket on the moto server, reached by boto3 at `endpoint` (moto itself, or the delay proxy)."""

    label: str
    endpoint: str
    log: RequestLog
    populated: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.client = s3_client(self.endpoint)
        self.source = f"s3://{BUCKET}"
        self.mount_args = ["--endpoint-url", self.endpoint]

    def via(self, label: str, endpoint: str) -> S3Backend:
        """The same bucket through another endpoint; what is populated stays shared."""
        return S3Backend(label, endpoint, self.log, self.populated)

    def counting(self) -> contextlib.AbstractContextManager[Counter[str] | None]:
        return self.log.window()

    def write_big(self, key: str, size: int, base: bytes) -> None:
        config = TransferConfig(multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE)
        self.client.upload_fileobj(PatternReader(size, base), BUCKET, key, Config=config)

    def read_big(self, key: str) -> int:
        body = self.client.get_object(Bucket=BUCKET, Key=key)["Body"]
        return sum(len(chunk) for chunk in body.iter_chunks(CHUNK))

    def put_small(self, keys: list[str], data: bytes) -> None:
        for key in keys:
            self.client.put_object(Bucket=BUCKET, Key=key, Body=data)

    def get_small(self, keys: list[str]) -> int:
        return sum(len(self.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()) for key in keys)

    def list_dir(self, prefix: str) -> int:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix=f"{prefix}/", Delimiter="/"
        )
        return sum(len(page.get("Contents", [])) for page in pages)

    def size_of(self, key: str) -> int | None:
        try:
            return self.client.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
        except self.client.exceptions.ClientError:
            return None

    def populate(self, prefix: str, count: int, data: bytes) -> list[str]:
        """Create the objects once per run, in parallel: setup, not measured."""
        keys = small_keys(prefix, count)
        if prefix not in self.populated:
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda key: self.client.put_object(Bucket=BUCKET, Key=key, Body=data), keys))
            self.populated.add(prefix)
        return keys


@dataclass
class LocalBackend:
    """A folder used as a bucket; the baseline is the same file operation on the folder itself.

    objfs's local backend fsyncs each object it stores, so the write baselines fsync too.
    """

    label: str
    root: Path

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.source = f"local://{self.root}"
        self.mount_args: list[str] = []

    def counting(self) -> contextlib.AbstractContextManager[Counter[str] | None]:
        return contextlib.nullcontext()

    def write_big(self, key: str, size: int, base: bytes) -> None:
        write_file(self.root / key, pattern_chunks(size, base), fsync=True)

    def read_big(self, key: str) -> int:
        return read_file(self.root / key)

    def put_small(self, keys: list[str], data: bytes) -> None:
        for key in keys:
            path = self.root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            write_file(path, iter([data]), fsync=True)

    def get_small(self, keys: list[str]) -> int:
        return sum(read_file(self.root / key) for key in keys)

    def list_dir(self, prefix: str) -> int:
        return ls_l(self.root / prefix)

    def size_of(self, key: str) -> int | None:
        path = self.root / key
        return path.stat().st_size if path.exists() else None

    def populate(self, prefix: str, count: int, data: bytes) -> list[str]:
        keys = small_keys(prefix, count)
        (self.root / prefix).mkdir(parents=True, exist_ok=True)
        for key in keys:
            if not (self.root / key).exists():
                (self.root / key).write_bytes(data)
        return keys


def ls_l(directory: Path) -> int:
    """Run `ls -l` as a user would; return the number of entries it printed."""
    result = subprocess.run(
        ["ls", "-l", str(directory)], capture_output=True, text=True, check=False, timeout=600
    )
    if result.returncode != 0:
        raise RuntimeError(f"ls -l {directory} failed ({result.returncode}): {result.stderr.strip()}")
    return sum(1 for line in result.stdout.splitlines() if not line.startswith("total "))


# -- mounts ----------------------------------------------------------------------------------


@dataclass
class Mount:
    path: Path
    cache_dir: Path
    pid: int

    def at(self, key: str) -> Path:
        return self.path / key


@dataclass
class Bench:
    """The run's settings and the state every figure shares."""

    workdir: Path
    size: int
    files: int
    listed: int
    can_drop: bool
    base: bytes = field(default_factory=lambda: os.urandom(CHUNK))
    small: bytes = field(default_factory=lambda: os.urandom(SMALL))
    figures: list[Figure] = field(default_factory=lambda: list(ALL_FIGURES))
    backends: tuple[str, ...] = ("local", "s3")
    issues: list[str] = field(default_factory=list)
    mounts: int = 0

    def objfs(self, *args: str, timeout: float = MOUNT_TIMEOUT) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "objfs", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)

    @contextlib.contextmanager
    def mounted(self, backend: Backend, *extra: str) -> Iterator[Mount]:
        """A fresh mount with an empty cache directory, always unmounted and its daemon stopped."""
        self.mounts += 1
        name = f"{backend.label}-{self.mounts}".replace("+", "-")
        mount = Mount(self.workdir / f"mnt-{name}", self.workdir / f"cache-{name}", 0)
        mount.path.mkdir()
        args = ["mount", backend.source, str(mount.path), "--cache-dir", str(mount.cache_dir)]
        result = self.objfs(*args, *backend.mount_args, *extra)
        try:
            if result.returncode != 0:
                raise RuntimeError(f"mount failed ({result.returncode}): {result.stderr.strip()}")
            mount.pid = int(Path(pidfile_for(str(mount.path))).read_text().strip())
            yield mount
        finally:
            self.unmount(mount, name)

    def unmount(self, mount: Mount, name: str) -> None:
        """`objfs umount` as a user would; whatever it leaves behind is forced away and reported."""
        if mounted_type(str(mount.path)) is not None:
            try:
                result = self.objfs("umount", str(mount.path), timeout=UMOUNT_TIMEOUT)
                if result.returncode != 0:
                    self.issues.append(f"{name}: umount exited {result.returncode}: {result.stderr.strip()}")
            except subprocess.TimeoutExpired:
                self.issues.append(f"{name}: umount did not return in {UMOUNT_TIMEOUT} s")
        if mounted_type(str(mount.path)) is not None and fusermount(str(mount.path), lazy=True).returncode:
            self.issues.append(f"{name}: still mounted after a lazy fusermount")
        if mount.pid and stop_process(mount.pid):
            self.issues.append(f"{name}: daemon {mount.pid} outlived its unmount and was killed")
        self.inspect(mount, name)

    def inspect(self, mount: Mount, name: str) -> None:
        """Report what objfs logged as wrong, and staging files a clean unmount should not leave."""
        log = mount.cache_dir / "objfs.log"
        if log.exists():
            bad = [line for line in log.read_text(errors="replace").splitlines() if _alarming(line)]
            self.issues.extend(f"{name}: log: {line[:300]}" for line in bad[:5])
            if len(bad) > 5:
                self.issues.append(f"{name}: log: ... {len(bad) - 5} more such lines")
        staging = mount.cache_dir / "staging"
        leftovers = [p for p in staging.rglob("*") if p.is_file()] if staging.exists() else []
        if leftovers:
            self.issues.append(f"{name}: {len(leftovers)} staging file(s) left after unmount")

    def measure(self, backend: Backend | None, action: Callable[[], object], *, cold: bool = False) -> Sample:
        """Time `action`, counting the requests it causes; `cold` empties the page cache first."""
        if cold:
            drop_page_cache()
        with backend.counting() if backend else contextlib.nullcontext() as counts:
            start = time.perf_counter()
            action()
            seconds = time.perf_counter() - start
        return Sample(seconds, counts)


def _alarming(line: str) -> bool:
    return any(word in line for word in (" ERROR ", " WARNING ", " CRITICAL ", "Traceback"))


def stop_process(pid: int) -> bool:
    """SIGTERM then SIGKILL one process we started; True if it was still running."""
    if not _alive(pid):
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


# -- the figures -----------------------------------------------------------------------------


def fig_write(bench: Bench, backend: Backend) -> list[Row]:
    """2 and 7 (write): a large sequential write through a mount of its own, and its peak memory."""
    size = bench.size
    base = bench.measure(backend, lambda: backend.write_big(BIG_BASELINE, size, bench.base))
    with bench.mounted(backend) as mount:
        ours = bench.measure(
            backend, lambda: write_file(mount.at(BIG_OBJFS), pattern_chunks(size, bench.base))
        )
        rss = vm_hwm_mib(mount.pid)
    expect(backend.size_of(BIG_OBJFS) or 0, size, "object written through the mount")
    return [
        compare("2 seq write", backend.label, ours, base, nbytes=size, target=ratio_at_least(0.9)),
        rss_row("7 peak RSS (write)", backend.label, rss),
    ]


def rss_row(figure: str, backend: str, mib: float) -> Row:
    return finish(Row(figure, backend, "MiB", mib, note="daemon VmHWM"), value_at_most(150, "MiB"))


def ensure_big(bench: Bench, backend: Backend) -> None:
    """The large object figure 2's baseline writes, written here if that figure failed or was skipped."""
    if backend.size_of(BIG_BASELINE) != bench.size:
        backend.write_big(BIG_BASELINE, bench.size, bench.base)


def fig_read(bench: Bench, backend: Backend, *, warm: bool = True) -> list[Row]:
    """1, 7 (read) and 6: a cold read on a fresh mount, its peak memory, then a re-read from its cache."""
    ensure_big(bench, backend)
    size = bench.size
    base = bench.measure(backend, lambda: expect(backend.read_big(BIG_BASELINE), size, "GET"), cold=True)
    cache = size + 64 * MIB
    extra = ["--cache-size", f"{cache // MIB}M"] if cache > DEFAULT_CACHE_SIZE else []
    with bench.mounted(backend, *extra) as mount:
        path = mount.at(BIG_BASELINE)
        ours = bench.measure(backend, lambda: expect(read_file(path), size, "cold read"), cold=True)
        rows = [
            compare("1 cold seq read", backend.label, ours, base, nbytes=size, target=ratio_at_least(0.9)),
            rss_row("7 peak RSS (read)", backend.label, vm_hwm_mib(mount.pid)),
        ]
        if warm:
            again = bench.measure(backend, lambda: expect(read_file(path), size, "warm read"), cold=True)
            rows.append(warm_row(bench, backend, again, extra))
            rows.append(rss_row("7 peak RSS (read, re-read)", backend.label, vm_hwm_mib(mount.pid)))
    return rows


def warm_row(bench: Bench, backend: Backend, again: Sample, extra: list[str]) -> Row:
    """6: objfs's disk cache against the same bytes read from native disk."""
    native = bench.workdir / "native-big"
    if not native.exists():
        write_file(native, pattern_chunks(bench.size, bench.base), fsync=True)
    base = bench.measure(None, lambda: expect(read_file(native), bench.size, "native read"), cold=True)
    notes = [] if bench.can_drop else ["drop_caches refused: baseline may be page-cached"]
    notes += [f"mounted with {' '.join(extra)}"] if extra else []
    return compare(
        "6 warm re-read",
        backend.label,
        again,
        base,
        nbytes=bench.size,
        target=ratio_at_least(0.7),
        note="; ".join(notes),
    )


def fig_cold_read(bench: Bench, backend: Backend) -> list[Row]:
    """1 and 7 (read): the cold read alone, where the warm re-read would only repeat figure 6."""
    return fig_read(bench, backend, warm=False)


def fig_creates(bench: Bench, backend: Backend) -> list[Row]:
    """3: many small files created one after another (open, write, close each)."""
    tag = backend.label.replace("+", "-")
    base_keys = small_keys(f"creates-base-{tag}", bench.files)
    base = bench.measure(backend, lambda: backend.put_small(base_keys, bench.small))
    with bench.mounted(backend) as mount:
        directory = mount.at(f"creates-objfs-{tag}")
        directory.mkdir()
        paths = [directory / f"f{index:05d}" for index in range(bench.files)]
        ours = bench.measure(backend, lambda: [write_file(p, iter([bench.small])) for p in paths])
    note = f"{bench.files} x 4 KiB; objfs {bench.files / ours.seconds:.0f}/s"
    return [compare(f"3 {bench.files} creates", backend.label, ours, base, note=note)]


def fig_small_reads(bench: Bench, backend: Backend) -> list[Row]:
    """5: many small files read by name, one after another, on a fresh mount (nothing cached)."""
    keys = backend.populate(SMALL_DIR, bench.files, bench.small)
    wanted = len(keys) * SMALL
    base = bench.measure(backend, lambda: expect(backend.get_small(keys), wanted, "GETs"), cold=True)
    with bench.mounted(backend) as mount:
        paths = [mount.at(key) for key in keys]
        ours = bench.measure(
            backend, lambda: expect(sum(read_file(p) for p in paths), wanted, "reads"), cold=True
        )
    note = f"{len(keys)} x 4 KiB by name; objfs {len(keys) / ours.seconds:.0f}/s"
    return [compare(f"5 {len(keys)} small reads", backend.label, ours, base, note=note)]


def fig_listing(bench: Bench, backend: Backend) -> list[Row]:
    """4: `ls -l` of a large directory on a fresh mount, its time and the requests it costs."""
    count = len(backend.populate(LIST_DIR, bench.listed, b"x"))
    base = bench.measure(backend, lambda: expect(backend.list_dir(LIST_DIR), count, "listing"), cold=True)
    with bench.mounted(backend) as mount:
        path = mount.at(LIST_DIR)
        ours = bench.measure(backend, lambda: expect(ls_l(path), count, "ls -l entries"), cold=True)
    timing = compare(f"4 ls -l {count}", backend.label, ours, base)
    if ours.requests is None or base.requests is None:
        return [timing]
    requests = Row(
        f"4 ls -l {count} requests",
        backend.label,
        "requests",
        sum(ours.requests.values()),
        sum(base.requests.values()),
        note=timing.note,
        objfs_requests=timing.objfs_requests,
        baseline_requests=timing.baseline_requests,
    )
    timing.note = ""
    return [timing, finish(requests, LISTING_REQUESTS)]


Figure = Callable[[Bench, Backend], list[Row]]
PRODUCES: dict[Figure, list[str]] = {
    fig_write: ["2 seq write", "7 peak RSS (write)"],
    fig_read: ["1 cold seq read", "7 peak RSS (read)", "6 warm re-read"],
    fig_cold_read: ["1 cold seq read", "7 peak RSS (read)"],
    fig_creates: ["3 creates"],
    fig_listing: ["4 ls -l"],
    fig_small_reads: ["5 small reads"],
}
FIGURE_NAMES: dict[str, Figure] = {
    "write": fig_write,
    "read": fig_read,
    "creates": fig_creates,
    "listing": fig_listing,
    "small-reads": fig_small_reads,
}
ALL_FIGURES: list[Figure] = list(FIGURE_NAMES.values())
LATENCY_FIGURES: dict[Figure, Figure] = {
    fig_write: fig_write,
    fig_read: fig_cold_read,
    fig_creates: fig_creates,
    fig_listing: fig_listing,
    fig_small_reads: fig_small_reads,
}
"""Figure 8 repeats these behind the delay proxy (the read without its warm half)."""


def run_figure(bench: Bench, figure: Figure, backend: Backend) -> list[Row]:
    """One figure; a failure becomes error rows for what it would have produced, and the run goes on."""
    started = time.monotonic()
    print(f"[{time.strftime('%H:%M:%S')}] {backend.label}: {figure.__doc__.split(':')[0]}", file=sys.stderr)
    try:
        rows = figure(bench, backend)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        error = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        rows = [Row(name, backend.label, error=error) for name in PRODUCES[figure]]
    for row in rows:
        print(f"    {format_row(row)}", file=sys.stderr)
    print(f"    ({time.monotonic() - started:.1f} s)", file=sys.stderr)
    return rows


# -- servers and the run ---------------------------------------------------------------------


@contextlib.contextmanager
def moto_server() -> Iterator[ServerProcess]:
    server = start_moto()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def delay_proxy(target: str, latency_ms: float) -> Iterator[str]:
    """The delay proxy in its own process (its event loop must not share our GIL); yields its URL."""
    host_port = target.removeprefix("http://")
    command = [
        sys.executable,
        str(Path(__file__).with_name("delay_proxy.py")),
        "--target",
        host_port,
        "--delay-ms",
        str(latency_ms / 2),
    ]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().split()
        if len(line) != 2 or line[0] != "listening":
            raise RuntimeError(f"delay proxy did not start (said {line!r})")
        yield f"http://127.0.0.1:{line[1]}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_all(bench: Bench, latency_ms: float, latency_files: int) -> list[Row]:
    rows: list[Row] = []
    if "local" in bench.backends:
        local = LocalBackend("local", bench.workdir / "bucket-local")
        for figure in bench.figures:
            rows += run_figure(bench, figure, local)
    if "s3" not in bench.backends:
        return rows
    try:
        rows += run_s3(bench, latency_ms, latency_files)
    except Exception as exc:  # the server itself failed: the local rows still stand
        traceback.print_exc(file=sys.stderr)
        rows.append(Row("s3 setup", "s3", error=f"{type(exc).__name__}: {exc}".splitlines()[0]))
    return rows


def run_s3(bench: Bench, latency_ms: float, latency_files: int) -> list[Row]:
    rows: list[Row] = []
    with moto_server() as server:
        s3 = S3Backend("s3", server.endpoint, RequestLog(server.log_dir / "server.log"))
        s3.client.create_bucket(Bucket=BUCKET)
        check_request_log(bench, s3)
        for figure in bench.figures:
            rows += run_figure(bench, figure, s3)
        if latency_ms > 0:
            rows += run_latency(bench, s3, server.endpoint, latency_ms, latency_files)
    return rows


def check_request_log(bench: Bench, s3: S3Backend) -> None:
    """Request counts come from moto's access log: make sure it logs one line per request, else go without."""
    with s3.log.window() as counts:
        s3.client.list_objects_v2(Bucket=BUCKET, MaxKeys=1)
    if counts != Counter(LIST=1):
        s3.log.enabled = False
        bench.issues.append(f"moto's log did not count one LIST as such ({counts}): requests not counted")


def run_latency(bench: Bench, s3: S3Backend, endpoint: str, latency_ms: float, files: int) -> list[Row]:
    """8: figures 1, 3, 4 and 5 again, objfs and boto3 both behind the same delay proxy.

    Small-file figures cost a round trip per request, so they take `files` files (fewer in quick runs).
    """
    rows: list[Row] = []
    label = f"s3+{latency_ms:g}ms"
    usual, bench.files = bench.files, files
    try:
        with delay_proxy(endpoint, latency_ms) as proxied:
            slow = s3.via(label, proxied)
            for figure in bench.figures:
                if figure in LATENCY_FIGURES:
                    rows += run_figure(bench, LATENCY_FIGURES[figure], slow)
    except Exception as exc:
        rows.append(Row("8 latency", label, error=f"{type(exc).__name__}: {exc}"))
    finally:
        bench.files = usual
    return rows


# -- output ----------------------------------------------------------------------------------

COLUMNS = ("figure", "backend", "objfs", "baseline", "ratio", "target", "met", "note")


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} {unit}" if unit == "requests" else f"{value:.3g} {unit}".strip()


def cells(row: Row) -> list[str]:
    met = "-" if row.met is None else "yes" if row.met else "MISS"
    ratio = "-" if row.ratio is None else f"{row.ratio:.2f}"
    note = f"ERROR {row.error}" if row.error else row.note
    baseline = _number(row.baseline, row.unit)
    return [row.figure, row.backend, _number(row.objfs, row.unit), baseline, ratio, row.target, met, note]


def format_row(row: Row) -> str:
    return " | ".join(cells(row))


def table(rows: list[Row]) -> str:
    body = [list(COLUMNS), *(cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in body) for i in range(len(COLUMNS) - 1)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)) + "  " + line[-1] for line in body
    ]
    lines.insert(1, "-" * max(len(line) for line in lines[:1]))
    return "\n".join(line.rstrip() for line in lines)


def names_of(allowed: Iterable[str]) -> Callable[[str], list[str]]:
    """An argparse type for a comma-separated selection out of `allowed`."""
    choices = set(allowed)

    def parse(text: str) -> list[str]:
        names = [name for name in text.split(",") if name]
        unknown = [name for name in names if name not in choices]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(sorted(choices))}")
        return names

    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="128 MiB large file (unless --size-mib)")
    parser.add_argument("--size-mib", type=int, help="size of the large file (default 1024, quick 128)")
    parser.add_argument(
        "--latency-ms", type=float, default=20.0, help="added round trip for figure 8 (0: skip)"
    )
    parser.add_argument("--files", type=int, default=1000, help="small files in figures 3 and 5")
    parser.add_argument(
        "--latency-files", type=int, help="small files in figure 8's 3 and 5 (default --files, quick 200)"
    )
    parser.add_argument("--listed", type=int, default=5000, help="objects in the directory of figure 4")
    parser.add_argument(
        "--figures",
        type=names_of(FIGURE_NAMES),
        default=list(FIGURE_NAMES),
        help=f"comma-separated, of {','.join(FIGURE_NAMES)} (default: all)",
    )
    parser.add_argument(
        "--backends", type=names_of({"local", "s3"}), default=["local", "s3"], help="local,s3 (default both)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    size_mib = args.size_mib or (128 if args.quick else 1024)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="objfs-bench-"))
    bench = Bench(workdir, size_mib * MIB, args.files, args.listed, drop_page_cache())
    bench.figures = [FIGURE_NAMES[name] for name in args.figures]
    bench.backends = tuple(args.backends)
    if not bench.can_drop:
        bench.issues.append("drop_caches refused: cold figures may be served from the page cache")
    try:
        latency_files = args.latency_files or (min(200, args.files) if args.quick else args.files)
        rows = run_all(bench, args.latency_ms, latency_files)
    finally:
        remove_workdir(bench)
    elapsed = time.monotonic() - started
    print(table(rows))
    print(f"\nlarge file {size_mib} MiB, {args.files} small files, {args.listed} listed; {elapsed:.0f} s")
    print("ratio = objfs speed / baseline speed (higher is better)")
    for issue in bench.issues:
        print(f"issue: {issue}")
    if args.json:
        report = {
            "settings": vars(args) | {"size_mib": size_mib, "json": str(args.json)},
            "elapsed_s": elapsed,
        }
        report |= {"rows": [asdict(row) for row in rows], "issues": bench.issues}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def remove_workdir(bench: Bench) -> None:
    """Remove the temporary directory unless a mount in it survived (removing through it could hang)."""
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        stuck = [line.split()[1] for line in mounts if str(bench.workdir) in line]
    if stuck:
        bench.issues.append(f"left {bench.workdir} in place: still mounted: {', '.join(stuck)}")
        return
    shutil.rmtree(bench.workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
