"""A randomized file exerciser in the spirit of fsx: one file on the mount and a reference file on
local disk get the same seeded sequence of writes at random offsets, reads, truncates up and down,
mmap writes and reads, fsyncs and close/reopen; every read is compared, the size after every
operation and the whole file every few operations. At the end the object fetched straight from
the server must equal the reference.

CI runs 10,000 operations per backend; OBJFS_FSX_OPERATIONS=100000 is the longer run, and
OBJFS_FSX_SEED replays a failure (the assertion message names the seed and operation number).
"""

from __future__ import annotations

import mmap
import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from mounting import mounted

from objfs.storage.registry import open_location

pytestmark = pytest.mark.fuse
OPERATIONS = int(os.environ.get("OBJFS_FSX_OPERATIONS", "10000"))
SEED = int(os.environ.get("OBJFS_FSX_SEED", "20261123"))
MAX_SIZE = 256 * 1024
MAX_LENGTH = 16 * 1024
FULL_CHECK_EVERY = 97


class Exerciser:
    """The same operation applied to both files; the log of operations explains a failure."""

    def __init__(self, mounted_path: Path, reference_path: Path, rng: random.Random) -> None:
        self.paths = (mounted_path, reference_path)
        self.rng = rng
        self.fds = self._open()
        self.history: list[str] = []

    def _open(self) -> tuple[int, int]:
        return tuple(os.open(path, os.O_RDWR | os.O_CREAT, 0o644) for path in self.paths)  # type: ignore[return-value]

    @property
    def size(self) -> int:
        return os.fstat(self.fds[1]).st_size

    def step(self, number: int) -> None:
        operation = self.rng.choices(self.OPERATIONS, weights=self.WEIGHTS)[0]
        operation(self)
        assert os.fstat(self.fds[0]).st_size == self.size, self._failure(number, "size differs")
        if number % FULL_CHECK_EVERY == 0:
            self._compare(0, self.size, number)

    def write(self) -> None:
        offset = self.rng.randrange(MAX_SIZE)
        data = self.rng.randbytes(self.rng.randrange(1, min(MAX_LENGTH, MAX_SIZE - offset) + 1))
        self.history.append(f"write {offset}+{len(data)}")
        for fd in self.fds:
            os.pwrite(fd, data, offset)

    def read(self) -> None:
        offset = self.rng.randrange(self.size + 1)
        length = self.rng.randrange(MAX_LENGTH)
        self.history.append(f"read {offset}+{length}")
        self._compare(offset, length, len(self.history))

    def truncate(self) -> None:
        size = self.rng.randrange(MAX_SIZE)
        self.history.append(f"truncate {size} (from {self.size})")
        for fd in self.fds:
            os.ftruncate(fd, size)

    def map_write(self) -> None:
        if self.size == 0:
            return self.write()
        offset = self.rng.randrange(self.size)
        data = self.rng.randbytes(self.rng.randrange(1, min(MAX_LENGTH, self.size - offset) + 1))
        self.history.append(f"mmap write {offset}+{len(data)}")
        for fd in self.fds:
            with mmap.mmap(fd, self.size) as mapped:
                mapped[offset : offset + len(data)] = data
                mapped.flush()
        return None

    def map_read(self) -> None:
        if self.size == 0:
            return None
        offset = self.rng.randrange(self.size)
        length = self.rng.randrange(1, min(MAX_LENGTH, self.size - offset) + 1)
        self.history.append(f"mmap read {offset}+{length}")
        with mmap.mmap(self.fds[0], self.size, prot=mmap.PROT_READ) as ours:
            seen = ours[offset : offset + length]
        expected = os.pread(self.fds[1], length, offset)
        assert seen == expected, self._failure(len(self.history), f"mmap read at {offset} differs")
        return None

    def fsync(self) -> None:
        self.history.append("fsync")
        os.fsync(self.fds[0])

    def reopen(self) -> None:
        self.history.append("close and reopen")
        self.close()
        self.fds = self._open()

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)

    def _compare(self, offset: int, length: int, number: int) -> None:
        ours, expected = (os.pread(fd, length, offset) for fd in self.fds)
        if ours != expected:
            first = next(
                i for i, (a, b) in enumerate(zip(ours + b"\0", expected + b"\1", strict=False)) if a != b
            )
            raise AssertionError(self._failure(number, f"bytes differ at {offset + first}"))

    def _failure(self, number: int, what: str) -> str:
        recent = "; ".join(self.history[-8:])
        return f"seed {SEED}, operation {number}: {what} (size {self.size}); last operations: {recent}"

    OPERATIONS: tuple[Callable[[Exerciser], None], ...] = (
        write,
        read,
        truncate,
        map_write,
        map_read,
        fsync,
        reopen,
    )
    WEIGHTS = (30, 25, 8, 10, 12, 5, 5)


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_random_operations_match_a_local_reference(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "local":
        folder = tmp_path / "bucket"
        folder.mkdir()
        source, env, settings = (
            f"local://{folder}",
            {},
            {"STORAGE_TYPE": "local", "STORAGE_LOCAL_PATH": str(folder)},
        )
    else:
        endpoint, bucket = request.getfixturevalue("moto_endpoint"), request.getfixturevalue("s3_bucket")
        env = {**request.getfixturevalue("s3_env"), "S3_ENDPOINT": endpoint}
        source = f"s3://{bucket}"
        settings = {"STORAGE_TYPE": "s3", "S3_BUCKET_NAME": bucket, "S3_ENDPOINT": endpoint}
    reference = tmp_path / "reference"
    with mounted(source, tmp_path, env) as mount:
        exerciser = Exerciser(mount.path / "fsx.bin", reference, random.Random(SEED))
        try:
            for number in range(1, OPERATIONS + 1):
                exerciser.step(number)
        finally:
            exerciser.close()
    bucket = open_location(None, base={**os.environ, **env, **settings})
    try:
        assert bucket.storage.read("fsx.bin") == reference.read_bytes(), (
            f"seed {SEED}: the stored object differs"
        )
    finally:
        bucket.storage.close()
