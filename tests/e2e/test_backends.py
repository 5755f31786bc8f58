"""Every backend mounts: configured only by the seed's variables (no SOURCE), each against its own
server on loopback, it takes files small and large, renames, chmod and deletes, and the bucket
holds exactly the objects a user expects under the configured prefix."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import backends
import pytest
from mounting import mounted

from objfs.storage.registry import backend_for_type, open_location

pytestmark = pytest.mark.fuse
MIB = 1024 * 1024
SHARED_BACKENDS = [
    name for name in backends.names() if not getattr(backends.module(name), "IN_PROCESS", False)
]


@pytest.mark.parametrize("name", SHARED_BACKENDS)
def test_a_mount_configured_by_environment_variables(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    settings = backends.settings(name, request)
    prefix_setting = backend_for_type(settings["STORAGE_TYPE"]).load().names.prefix
    settings[prefix_setting] = "mounted/here"
    big = os.urandom(17 * MIB)  # past the 16 MiB multipart threshold, where the backend has multipart

    with mounted(None, tmp_path, settings) as mount:
        folder = mount.path / "docs"
        folder.mkdir()
        (folder / "note.txt").write_text("hello from objfs\n")
        (folder / "big.bin").write_bytes(big)
        os.rename(folder / "note.txt", folder / "renamed.txt")
        os.chmod(folder / "renamed.txt", 0o600)
        (folder / "gone.txt").write_text("short-lived")
        os.unlink(folder / "gone.txt")
        mount.remount()
        assert sorted(os.listdir(folder)) == ["big.bin", "renamed.txt"]
        assert (folder / "renamed.txt").read_text() == "hello from objfs\n"
        assert stat.S_IMODE((folder / "renamed.txt").stat().st_mode) == 0o600
        assert (folder / "big.bin").stat().st_size == len(big)
        assert (folder / "big.bin").read_bytes() == big

    bucket = open_location(None, base=settings)
    try:
        keys = {info.key for info in bucket.storage.iter_objects("mounted/here/")}
        assert keys == {"mounted/here/docs/", "mounted/here/docs/big.bin", "mounted/here/docs/renamed.txt"}
        assert bucket.storage.read("mounted/here/docs/big.bin") == big
    finally:
        bucket.storage.close()
