"""A folder used as a bucket: keys are relative paths, attributes live in extended attributes.

Layout: key `a/b.txt` is the file `ROOT/a/b.txt`; a marker key `a/` is the folder `ROOT/a` flagged
with the xattr `user.objfs.dir`. `ROOT/.objfs` is reserved for temporary files, multipart parts
and the lock that makes conditional writes atomic; it never appears as a key.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import io
import json
import os
import re
import shutil
import stat as st_mode
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .base import (
    STREAM_CHUNK,
    BadConfiguration,
    Capabilities,
    IntegrityError,
    InvalidKey,
    ListPage,
    MultipartUpload,
    NoSpace,
    NotFound,
    ObjectInfo,
    Payload,
    PermissionDenied,
    PreconditionFailed,
    Storage,
    StorageError,
    Unavailable,
    UploadedPart,
    content_md5,
    payload_size,
    verify_md5,
)
from .listing import page_of_keys
from .settings import PREFIX, SettingNames, Settings

LOCAL_PATH = "STORAGE_LOCAL_PATH"
RESERVED = ".objfs"
XATTR_DIR = "user.objfs.dir"
XATTR_TYPE = "user.objfs.content_type"
XATTR_META = "user.objfs.meta."
XATTR_PROBE = "user.objfs.probe"
MANIFEST = "upload.json"
MAX_NAME_BYTES = 255
FILE_MODE = 0o644
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_MISSING = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR})
_DENIED = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
_NO_ROOM = frozenset({errno.ENOSPC, errno.E2BIG, errno.EDQUOT})
_NO_XATTRS = frozenset({errno.ENOTSUP, errno.EOPNOTSUPP})
_NO_COPY_RANGE = frozenset({errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP})
COPY_CHUNK = 1 << 30


class LocalStorage(Storage):
    """Objects as plain files, so the folder stays readable by any other tool."""

    scheme = "local"
    names = SettingNames()
    capabilities = Capabilities(
        copy=True,
        multipart=True,
        conditional_write=True,
        metadata_in_listing=True,
        min_part_size=1,
        max_metadata_bytes=3072,
        local_disk=True,
    )
    """ext4 keeps a file's xattrs in one 4 KiB block; 3 KiB of names and values leaves room for
    the per-entry overhead. Past the block, setxattr fails with ENOSPC: a NoSpace, not retried."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.path.abspath(root)
        self._internal = os.path.join(self.root, RESERVED)

    @classmethod
    def url_settings(cls, bucket: str, path: str, variant: str | None = None) -> dict[str, str]:
        """`local:///srv/bucket`: the whole path is the folder, so the prefix is always empty."""
        if variant is not None:
            raise BadConfiguration(f"local+{variant}: the local scheme has no variants")
        if bucket not in ("", "localhost"):
            raise BadConfiguration(
                f"local URLs name a folder on this machine, not on {bucket!r}: use local:///path"
            )
        if not path:
            raise BadConfiguration("a local URL needs a folder: local:///srv/bucket")
        return {LOCAL_PATH: path, PREFIX: ""}

    @classmethod
    def from_settings(cls, settings: Settings) -> Storage:
        return cls(settings.require(LOCAL_PATH, "the folder to mount, e.g. /srv/bucket"))

    def describe(self) -> str:
        return f"local://{self.root}"

    def check(self) -> None:
        """Probe a real xattr write: a filesystem may list xattrs yet refuse `user.*` ones (older tmpfs)."""
        if not os.path.exists(self.root):
            raise NotFound(f"folder {self.root} does not exist")
        if not os.path.isdir(self.root):
            raise BadConfiguration(f"{self.root} is not a folder")
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise PermissionDenied(f"folder {self.root} is not writable")
        with self._errors(None):
            os.makedirs(self._internal, exist_ok=True)
            os.setxattr(self._internal, XATTR_PROBE, b"1")
            os.removexattr(self._internal, XATTR_PROBE)

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        with self._errors(key):
            found = _lookup(key, path)
            if found is None:
                raise NotFound(f"no such key: {key}", key=key)
            return _info(key, path, found)

    def read(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        if key.endswith("/"):
            self.stat(key)  # a marker is a folder: it exists or not, but holds no bytes
            return b""
        with self._errors(key), open(self._path(key), "rb", buffering=0) as source:
            size = os.fstat(source.fileno()).st_size
            wanted = max(0, size - offset if length is None else min(length, size - offset))
            return _pread(source.fileno(), wanted, offset)

    def read_stream(self, key: str, offset: int = 0) -> Iterator[bytes]:
        if key.endswith("/"):
            self.stat(key)
            return
        with self._errors(key), open(self._path(key), "rb") as source:
            source.seek(offset)
            yield from iter(lambda: source.read(STREAM_CHUNK), b"")

    def write(
        self,
        key: str,
        data: Payload,
        *,
        metadata: dict[str, str] | None = None,
        content_type: str | None = None,
        if_match: str | None = None,
        if_none_match: bool = False,
        md5: str | None = None,
    ) -> ObjectInfo:
        path = self._path(key)
        with self._errors(key):
            if key.endswith("/"):
                if payload_size(data):
                    raise _folder_holds_no_data(key)
                return self._write_marker(key, path, metadata, content_type, if_match, if_none_match)
            with _temp(self._tmp_dir()) as tmp:
                with open(tmp, "wb") as out:
                    _fill(out, data)
                _verify_md5(key, tmp, md5)
                return self._commit(key, path, tmp, metadata, content_type, if_match, if_none_match)

    def list(
        self,
        prefix: str = "",
        delimiter: str | None = "/",
        token: str | None = None,
        limit: int = 1000,
    ) -> ListPage:
        """Walk the folders lazily in key order, so a page costs about a page of disk reads."""
        with self._errors(None):
            if delimiter not in (None, "/"):
                walked = (self._listed(key) for key, _ in self._names(prefix, True, None))
                found = {info.key: info for info in walked if info is not None}
                return page_of_keys(found, prefix, delimiter, token, limit)
            names = []
            for name in self._names(prefix, delimiter is None, token):
                names.append(name)
                if len(names) > limit:
                    break
            page = ListPage(next_token=names[limit - 1][0] if len(names) > limit else None)
            for key, is_prefix in names[:limit]:
                if is_prefix:
                    page.prefixes.append(key)
                elif info := self._listed(key):
                    page.objects.append(info)
            return page

    def copy(
        self,
        src: str,
        dst: str,
        *,
        metadata: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectInfo:
        """Read data and attributes through one open file, so both come from the same version."""
        if src.endswith("/") or dst.endswith("/"):
            # markers are folders with no bytes to copy; write() knows how to make one
            return self.copy_via_client(src, dst, metadata=metadata, content_type=content_type)
        dst_path = self._path(dst)
        with self._errors(src), open(self._path(src), "rb") as source, _temp(self._tmp_dir()) as tmp:
            kept, kind = _read_attrs(source.fileno())
            with open(tmp, "wb") as out:
                shutil.copyfileobj(source, out, STREAM_CHUNK)
            chosen = kept if metadata is None else metadata
            return self._commit(dst, dst_path, tmp, chosen, content_type or kind)

    def delete(self, key: str) -> None:
        path = self._path(key)
        with self._errors(key), self._locked():
            if _lookup(key, path) is None:
                return
            if key.endswith("/"):
                _write_attrs(path, None, None)
                os.removexattr(path, XATTR_DIR)
                self._prune(path)
            else:
                os.unlink(path)
                self._prune(os.path.dirname(path))

    def create_multipart(
        self, key: str, *, metadata: dict[str, str] | None = None, content_type: str | None = None
    ) -> str:
        self._path(key)
        if key.endswith("/"):
            raise _folder_holds_no_data(key)
        upload_id = uuid.uuid4().hex
        manifest = {
            "key": key,
            "metadata": metadata or {},
            "content_type": content_type,
            "initiated": time.time(),
        }
        with self._errors(key):
            folder = self._upload_dir(upload_id)
            os.makedirs(folder)
            Path(folder, MANIFEST).write_text(json.dumps(manifest))
        return upload_id

    def upload_part(self, key: str, upload_id: str, number: int, data: Payload, md5: str) -> UploadedPart:
        """Verify the MD5 as S3 would; the part's file name carries its etag, so completing checks it."""
        self._upload(key, upload_id)
        verify_md5(key, data, md5, f"part {number}")
        etag = base64.b64decode(md5).hex()
        folder = self._upload_dir(upload_id)
        with self._errors(key), _temp(folder) as tmp:
            with open(tmp, "wb") as out:
                _fill(out, data)
            os.replace(tmp, os.path.join(folder, _part_name(number, etag)))
        return UploadedPart(number, etag)

    def complete_multipart(self, key: str, upload_id: str, parts: list[UploadedPart]) -> ObjectInfo:
        manifest = self._upload(key, upload_id)
        folder = self._upload_dir(upload_id)
        with self._errors(key), _temp(self._tmp_dir()) as tmp:
            with open(tmp, "wb") as out:
                for part in parts:
                    _append_part(out, os.path.join(folder, _part_name(part.number, part.etag)), part, key)
            info = self._commit(key, self._path(key), tmp, manifest["metadata"], manifest["content_type"])
        shutil.rmtree(folder, ignore_errors=True)
        return info

    def abort_multipart(self, key: str, upload_id: str) -> None:
        if _UPLOAD_ID.fullmatch(upload_id):
            shutil.rmtree(self._upload_dir(upload_id), ignore_errors=True)

    def list_multipart(self, prefix: str = "") -> list[MultipartUpload]:
        with self._errors(None):
            try:
                upload_ids = os.listdir(os.path.join(self._internal, "uploads"))
            except FileNotFoundError:
                return []
        uploads = []
        for upload_id in upload_ids:
            manifest = self._manifest(upload_id)
            if manifest is not None and manifest["key"].startswith(prefix):
                uploads.append(MultipartUpload(manifest["key"], upload_id, manifest["initiated"]))
        return sorted(uploads, key=lambda upload: (upload.key, upload.initiated))

    def url(self, key: str, expires: int = 3600) -> str:
        return Path(self._path(key)).as_uri()

    # -- helpers -------------------------------------------------------------------------

    def _path(self, key: str) -> str:
        """The file for `key`; refuses any key that could leave the folder or reach `.objfs`."""
        parts = (key[:-1] if key.endswith("/") else key).split("/")
        if not key or parts[0] == RESERVED or any(_bad_name(part) for part in parts):
            raise InvalidKey(f"invalid key for a folder: {key!r}", key=key)
        return os.path.join(self.root, *parts)

    def _tmp_dir(self) -> str:
        folder = os.path.join(self._internal, "tmp")
        os.makedirs(folder, exist_ok=True)
        return folder

    def _upload_dir(self, upload_id: str) -> str:
        return os.path.join(self._internal, "uploads", upload_id)

    @contextlib.contextmanager
    def _errors(self, key: str | None) -> Iterator[None]:
        """Report OS failures as the typed errors every backend raises, so no OSError leaves."""
        try:
            yield
        except OSError as exc:
            raise self._translate(exc, key) from exc

    def _translate(self, exc: OSError, key: str | None) -> StorageError:
        where = f"{self.describe()}/{key}" if key else self.describe()
        if exc.errno in _MISSING:
            return NotFound(f"no such key: {key}" if key else f"folder {self.root} does not exist", key=key)
        if exc.errno in _DENIED:
            return PermissionDenied(f"access denied to {where}: {exc.strerror}", key=key)
        if exc.errno == errno.ENAMETOOLONG:
            return InvalidKey(f"key too long for a folder: {key!r}", key=key)
        if exc.errno in _NO_ROOM:
            return NoSpace(f"no room in folder {self.root} for {key or 'the write'}: {exc.strerror}", key=key)
        if exc.errno in _NO_XATTRS:
            return BadConfiguration(f"folder {self.root} is on a filesystem without user xattrs", key=key)
        return Unavailable(f"{where}: {exc.strerror or exc}", key=key)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialize changes to visible keys across threads and processes sharing the folder.

        A conditional write's compare and rename must be one step; flock on a fresh descriptor
        excludes other threads of this process as well as other mounts.
        """
        os.makedirs(self._internal, exist_ok=True)
        fd = os.open(os.path.join(self._internal, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _commit(
        self,
        key: str,
        path: str,
        tmp: str,
        metadata: dict[str, str] | None,
        content_type: str | None,
        if_match: str | None = None,
        if_none_match: bool = False,
        md5: str | None = None,
    ) -> ObjectInfo:
        """Make the finished `tmp` the object: attributes and data reach the disk before the rename."""
        fd = os.open(tmp, os.O_RDONLY)
        try:
            _write_attrs(fd, metadata, content_type)
            os.fchmod(fd, FILE_MODE)
            _stamp(fd)
            os.fsync(fd)
        finally:
            os.close(fd)
        with self._locked():
            _check_condition(key, path, if_match, if_none_match)
            with _collisions(key, self.root):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                os.replace(tmp, path)
            found = os.stat(path)
        return _described(key, found, metadata, content_type)

    def _write_marker(
        self,
        key: str,
        path: str,
        metadata: dict[str, str] | None,
        content_type: str | None,
        if_match: str | None,
        if_none_match: bool,
    ) -> ObjectInfo:
        with self._locked():
            _check_condition(key, path, if_match, if_none_match)
            with _collisions(key, self.root):
                os.makedirs(path, exist_ok=True)
            os.setxattr(path, XATTR_DIR, b"1")
            _write_attrs(path, metadata, content_type)
            _stamp(path)
            found = os.stat(path)
        return _described(key, found, metadata, content_type)

    def _prune(self, folder: str) -> None:
        """Remove folders a delete left empty, as S3 forgets a prefix with its last key; markers stay."""
        while folder != self.root and not _is_marker(folder):
            try:
                os.rmdir(folder)
            except OSError:  # not empty (or already gone): the folders above are needed too
                return
            folder = os.path.dirname(folder)

    def _names(self, prefix: str, recurse: bool, after: str | None) -> Iterator[tuple[str, bool]]:
        """(key, is_prefix) under `prefix` in key order, after `after`; prefixes only when not recursing."""
        folder, _, start = prefix.rpartition("/")
        folder_key = f"{folder}/" if folder else ""
        try:
            folder_path = self._path(folder_key) if folder else self.root
        except InvalidKey:
            return  # no valid key can start with this prefix
        if folder and not start and (after is None or folder_key > after) and _is_marker(folder_path):
            yield folder_key, False
        yield from self._children(folder_key, start, recurse, after)

    def _children(
        self, folder_key: str, start: str, recurse: bool, after: str | None
    ) -> Iterator[tuple[str, bool]]:
        """Siblings sorted by key (folders as `name/`) and walked depth first give global key order."""
        for key, is_dir in self._entries(folder_key, start):
            inside = recurse and is_dir and after is not None and after.startswith(key)
            if after is not None and key <= after and not inside:
                continue
            if not is_dir:
                yield key, False
            elif not recurse:
                if self._holds_objects(key):
                    yield key, True
            else:
                if (after is None or key > after) and _is_marker(self._path(key)):
                    yield key, False
                yield from self._children(key, "", True, after)

    def _entries(self, folder_key: str, start: str) -> list[tuple[str, bool]]:
        entries = []
        try:
            with os.scandir(os.path.join(self.root, folder_key)) as found:
                for entry in found:
                    if (not folder_key and entry.name == RESERVED) or not entry.name.startswith(start):
                        continue
                    is_dir = entry.is_dir(follow_symlinks=False)
                    if (is_dir or entry.is_file()) and not _bad_name(entry.name):
                        entries.append((f"{folder_key}{entry.name}{'/' if is_dir else ''}", is_dir))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(entries)

    def _holds_objects(self, folder_key: str) -> bool:
        """Whether a folder is a prefix S3 would show: a marker, or some object somewhere below."""
        if _is_marker(self._path(folder_key)):
            return True
        return next(self._children(folder_key, "", True, None), None) is not None

    def _listed(self, key: str) -> ObjectInfo | None:
        """The info of a key found by a walk, or None if it vanished since."""
        path = self._path(key)
        found = _lookup(key, path)
        return None if found is None else _info(key, path, found)

    def _manifest(self, upload_id: str) -> dict | None:
        if not _UPLOAD_ID.fullmatch(upload_id):
            return None
        try:
            return json.loads(Path(self._upload_dir(upload_id), MANIFEST).read_text())
        except (OSError, ValueError):
            return None

    def _upload(self, key: str, upload_id: str) -> dict:
        """The upload's manifest; an id of another key is as unknown as a made-up one."""
        manifest = self._manifest(upload_id)
        if manifest is None or manifest.get("key") != key:
            raise NotFound(f"no such upload {upload_id} for {key}", key=key)
        return manifest


def _bad_name(name: str) -> bool:
    try:
        size = len(name.encode())
    except UnicodeEncodeError:
        return True
    return name in ("", ".", "..") or "\0" in name or size > MAX_NAME_BYTES


def _folder_holds_no_data(key: str) -> InvalidKey:
    return InvalidKey(f"{key!r} ends in '/', which is a folder here and cannot hold data", key=key)


@contextlib.contextmanager
def _collisions(key: str, root: str) -> Iterator[None]:
    """A file and a folder cannot share a name on disk, although S3 allows `a` next to `a/b`."""
    try:
        yield
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
        message = f"{key!r} collides with a file or folder of the same name in {root}"
        raise InvalidKey(message, key=key) from exc


@contextlib.contextmanager
def _temp(folder: str) -> Iterator[str]:
    """A private file in `folder` that vanishes unless it was renamed into place."""
    fd, tmp = tempfile.mkstemp(dir=folder)
    os.close(fd)
    try:
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _fill(out: BinaryIO, data: Payload) -> None:
    if isinstance(data, bytes | bytearray | memoryview):
        out.write(data)
        return
    data.seek(0)
    try:
        data.fileno()
    except (AttributeError, io.UnsupportedOperation):
        shutil.copyfileobj(data, out, STREAM_CHUNK)
    else:
        _append_file(out, data)


def _pread(fd: int, wanted: int, offset: int) -> bytes:
    chunks = []
    while wanted > 0:
        chunk = os.pread(fd, wanted, offset)
        if not chunk:
            break
        chunks.append(chunk)
        wanted -= len(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _part_name(number: int, etag: str) -> str:
    return f"part-{number}-{etag}"


def _append_part(out: BinaryIO, path: str, part: UploadedPart, key: str) -> None:
    """Parts are found by number and etag, so a missing file means the caller's etag was never stored."""
    try:
        with open(path, "rb") as source:
            _append_file(out, source)
    except FileNotFoundError:
        raise IntegrityError(f"part {part.number} of {key} was not uploaded", key=key) from None


def _append_file(out: BinaryIO, source: BinaryIO) -> None:
    """Append `source` to `out` inside the kernel (no pass through Python, a reflink where the
    filesystem shares extents), as `cp` does; through Python where the kernel cannot."""
    out.flush()
    try:
        while os.copy_file_range(source.fileno(), out.fileno(), COPY_CHUNK):
            pass
    except OSError as exc:
        if exc.errno not in _NO_COPY_RANGE:
            raise
        shutil.copyfileobj(source, out, STREAM_CHUNK)
    out.seek(0, os.SEEK_END)  # the buffered writer learns where the kernel left the file


def _stamp(target: str | int) -> None:
    """Set mtime from the fine-grained clock: the kernel's coarse file clock could give two writes
    in one tick the same mtime, and a reused inode the same etag."""
    now = time.time_ns()
    os.utime(target, ns=(now, now))


def _is_marker(path: str) -> bool:
    try:
        return os.getxattr(path, XATTR_DIR) == b"1"
    except OSError:  # no such attribute, no such folder, or no xattrs at all: not a marker
        return False


def _lookup(key: str, path: str) -> os.stat_result | None:
    """The stat of `key`'s object, or None: a folder is an object only as a marker key `a/`."""
    try:
        found = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if key.endswith("/"):
        return found if st_mode.S_ISDIR(found.st_mode) and _is_marker(path) else None
    return found if st_mode.S_ISREG(found.st_mode) else None


def _etag(found: os.stat_result) -> str:
    size = found.st_size if st_mode.S_ISREG(found.st_mode) else 0
    return f"{found.st_mtime_ns:x}-{size:x}-{found.st_ino:x}"


def _check_condition(key: str, path: str, if_match: str | None, if_none_match: bool) -> None:
    if if_match is None and not if_none_match:
        return
    current = _lookup(key, path)
    if if_none_match and current is not None:
        raise PreconditionFailed(f"{key} already exists", key=key)
    if if_match is not None and (current is None or _etag(current) != if_match):
        raise PreconditionFailed(f"{key} changed since etag {if_match}", key=key)


def _described(
    key: str, found: os.stat_result, metadata: dict[str, str] | None, content_type: str | None
) -> ObjectInfo:
    size = found.st_size if st_mode.S_ISREG(found.st_mode) else 0
    return ObjectInfo(key, size, _etag(found), found.st_mtime, content_type, dict(metadata or {}))


def _info(key: str, path: str, found: os.stat_result) -> ObjectInfo:
    metadata, content_type = _read_attrs(path)
    return _described(key, found, metadata, content_type)


def _read_attrs(target: str | int) -> tuple[dict[str, str], str | None]:
    metadata, content_type = {}, None
    for name in os.listxattr(target):
        if name.startswith(XATTR_META):
            metadata[name[len(XATTR_META) :]] = os.getxattr(target, name).decode(errors="replace")
        elif name == XATTR_TYPE:
            content_type = os.getxattr(target, name).decode(errors="replace")
    return metadata, content_type


def _write_attrs(target: str | int, metadata: dict[str, str] | None, content_type: str | None) -> None:
    """Replace the user metadata and content type, leaving the marker flag alone."""
    for name in os.listxattr(target):
        if name.startswith(XATTR_META) or name == XATTR_TYPE:
            os.removexattr(target, name)
    for name, value in (metadata or {}).items():
        os.setxattr(target, XATTR_META + name, value.encode())
    if content_type:
        os.setxattr(target, XATTR_TYPE, content_type.encode())


def _verify_md5(key: str, path: str, md5: str | None) -> None:
    """Check what reached the disk, as S3 checks Content-MD5 against what reached it."""
    if md5 is None:
        return
    with open(path, "rb") as written:
        if content_md5(written) != md5:
            raise IntegrityError(f"{key}: body does not match its MD5", key=key)
