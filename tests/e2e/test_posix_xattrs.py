"""Extended attributes on a real mount: user.* persisted in the object's metadata as s3fs stores
them (one `xattr` entry), the backend's metadata cap, and the read-only virtual user.objfs.*."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from mounting import Mount
from test_posix_semantics import Backend, backend, errno_of, mount

__all__ = ["backend", "mount"]  # the parametrized local/S3 fixtures, shared with the other POSIX tests

BINARY = bytes(range(256))


def test_set_get_list_remove_survive_a_remount(backend: Backend, mount: Mount) -> None:
    path = mount.path / "tagged"
    path.write_bytes(b"body")
    os.setxattr(path, "user.colour", b"blue")
    os.setxattr(path, "user.binary", BINARY)
    os.setxattr(path, "user.empty", b"")
    os.setxattr(path, "user.colour", b"green")
    mount.remount()
    assert sorted(os.listxattr(path)) == ["user.binary", "user.colour", "user.empty"]
    assert os.getxattr(path, "user.colour") == b"green"
    assert os.getxattr(path, "user.binary") == BINARY
    assert os.getxattr(path, "user.empty") == b""
    os.removexattr(path, "user.binary")
    assert errno_of(lambda: os.getxattr(path, "user.binary")) == errno.ENODATA
    assert errno_of(lambda: os.removexattr(path, "user.binary")) == errno.ENODATA
    mount.remount()
    assert sorted(os.listxattr(path)) == ["user.colour", "user.empty"]
    assert path.read_bytes() == b"body"


def test_stored_as_s3fs_stores_them(backend: Backend, mount: Mount) -> None:
    """s3fs: the JSON {"name":"base64(value)"} percent-encoded, in the one metadata entry `xattr`."""
    path = mount.path / "s3fs"
    path.write_bytes(b"")
    os.setxattr(path, "user.a", b"hello")
    mount.remount()
    assert backend.metadata("s3fs")["xattr"] == "%7B%22user.a%22%3A%22aGVsbG8%3D%22%7D"


def test_directories_carry_attributes_too(backend: Backend, mount: Mount) -> None:
    folder = mount.path / "folder"
    folder.mkdir()
    os.setxattr(folder, "user.project", b"objfs")
    mount.remount()
    assert os.getxattr(folder, "user.project") == b"objfs"
    assert "xattr" in backend.metadata("folder/")


def test_the_metadata_cap_gives_enospc(backend: Backend, mount: Mount) -> None:
    path = mount.path / "big"
    path.write_bytes(b"")
    large = b"v" * 1500  # 2,000 bytes in base64: past S3's 2 KiB with mode, owner and times
    if backend.metadata_limit is None:  # objfs sets no cap on a folder: the value is stored
        os.setxattr(path, "user.large", large)
        mount.remount()
        assert os.getxattr(path, "user.large") == large
        return
    assert errno_of(lambda: os.setxattr(path, "user.large", large)) == errno.ENOSPC
    assert errno_of(lambda: os.getxattr(path, "user.large")) == errno.ENODATA
    os.setxattr(path, "user.small", b"fits")
    mount.remount()
    assert os.listxattr(path) == ["user.small"]


def test_virtual_attributes_are_read_only_and_unlisted(mount: Mount) -> None:
    path = mount.path / "file"
    path.write_bytes(b"x")
    assert os.getxattr(path, "user.objfs.etag")
    assert errno_of(lambda: os.setxattr(path, "user.objfs.etag", b"forged")) == errno.EPERM
    assert errno_of(lambda: os.removexattr(path, "user.objfs.etag")) == errno.EPERM
    assert os.listxattr(path) == []


def test_other_namespaces_are_not_supported(mount: Mount) -> None:
    path = Path(mount.path / "file")
    path.write_bytes(b"x")
    assert errno_of(lambda: os.setxattr(path, "trusted.thing", b"x")) == errno.ENOTSUP
    assert errno_of(lambda: os.getxattr(path, "security.selinux")) == errno.ENODATA
