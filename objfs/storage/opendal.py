"""Any service Apache OpenDAL reaches (fs, memory, s3, gcs, azblob, webdav, ...) through a blocking Operator.

Configuration is the seed's: `OPENDAL_SCHEME` (default `fs`) picks the service and every
`OPENDAL_<SCHEME>_<OPTION>` becomes the operator option `<option>` (`OPENDAL_FS_ROOT=storage` is
`root="storage"`). OpenDAL silently ignores options it does not know, so a misspelt name is not an
error. `OPENDAL_ENDPOINT`/`OPENDAL_REGION` are where `--endpoint`/`--region` land (the flag's
setting name cannot depend on the scheme); they mean `OPENDAL_<SCHEME>_ENDPOINT`/`_REGION` and win.

Services differ in what they keep, and the capabilities say what this one can do (`op.capability()`).
What a service cannot keep natively lives in a sidecar object under the reserved `.objfs/attrs/`:
- user metadata and content type on services without them (memory has no user metadata, fs no content type);
- for a service with neither etag nor last-modified (memory), a write token as etag and the write time as
  mtime; an object with no sidecar there gets the MD5 of its bytes (one full read) and mtime 0;
- directory markers (`dir/`): a marker is a sidecar plus the service's own directory, since no service lets
  an operator write bytes or metadata to a path ending in `/`. A folder that has no sidecar is implicit.
A sidecar records the object's size and native stamp (etag or last-modified) at write time and is ignored
once they differ, so an object rewritten by another tool loses the attributes instead of taking stale ones.
The object is written before its sidecar: a crash in between leaves the object without them.

Etag: the service's where it gives one (S3, GCS); else `<size>-<last-modified ns>` in hex (fs), as the local
backend does; else the sidecar's token. mtime: the service's last-modified, else the sidecar's write time.

No multipart: the Python binding has no listable multipart uploads (its writer uploads parts internally and
cannot be resumed or listed), so `multipart=False`; large payloads are still streamed by the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import opendal
from opendal import exceptions as sdk
from opendal.layers import TimeoutLayer

from .base import (
    STREAM_CHUNK,
    BadConfiguration,
    Capabilities,
    InvalidKey,
    ListPage,
    NotFound,
    ObjectInfo,
    Payload,
    PermissionDenied,
    PreconditionFailed,
    Storage,
    StorageError,
    Unavailable,
    Unsupported,
    WithoutMultipart,
    payload_size,
    verify_md5,
)
from .listing import page_of_keys
from .settings import CA_BUNDLE, PREFIX, PROXY, SSE_KMS_KEY_ID, STORAGE_CLASS, SettingNames, Settings

SCHEME = "OPENDAL_SCHEME"
DEFAULT_SCHEME = "fs"
ENDPOINT = "OPENDAL_ENDPOINT"
REGION = "OPENDAL_REGION"
RESERVED = ".objfs/"
SIDECARS = RESERVED + "attrs/"
SIDECAR_SUFFIX = ".json"
WRITE_CHUNK = 8 * 1024 * 1024
"""Part size of the writer's internal multipart upload when a payload is streamed from a file."""
OP_TIMEOUT = 60.0
CHECK_TIMEOUT = 5.0

BUCKET_OPTIONS = {
    "s3": "bucket",
    "gcs": "bucket",
    "oss": "bucket",
    "cos": "bucket",
    "obs": "bucket",
    "tos": "bucket",
    "b2": "bucket",
    "upyun": "bucket",
    "azblob": "container",
    "swift": "container",
    "azdls": "filesystem",
    "azfile": "share_name",
}
"""The option a URL's host names for services with buckets: `opendal+s3://b/p` is OPENDAL_S3_BUCKET=b."""
FOLDER_SERVICES = frozenset({"fs", "hdfs-native", "webhdfs", "sftp", "ftp", "webdav", "alluxio", "azfile"})
"""Services whose directories are real folders that outlive their last object, so deletes prune them."""

_ERRORS: dict[str, type[StorageError]] = {
    "NotFound": NotFound,
    "IsADirectory": NotFound,
    "NotADirectory": NotFound,
    "PermissionDenied": PermissionDenied,
    "ConditionNotMatch": PreconditionFailed,
    "AlreadyExists": PreconditionFailed,
    "Conflict": PreconditionFailed,
    "RateLimited": Unavailable,
    "ConfigInvalid": BadConfiguration,
    "Unsupported": Unsupported,
    "IsSameFile": InvalidKey,
}
"""OpenDAL's error kinds by name: the operator raises them as classes of `opendal.exceptions`, its file
objects as OSError whose message starts with the kind (`NotFound (permanent) at read ...`)."""
_PATH_KINDS = frozenset({"IsADirectory", "NotADirectory", "AlreadyExists"})
_SDK_ERRORS = (
    sdk.Error,
    sdk.Unexpected,
    sdk.RangeNotSatisfied,
    *(getattr(sdk, name) for name in _ERRORS),
    OSError,
)
_KIND = re.compile(r"(\w+) \((?:permanent|temporary|persistent)\)")
_ERRORS_BY_CODE: dict[str, type[StorageError]] = {
    "NoSuchBucket": NotFound,
    "ContainerNotFound": NotFound,
    "InvalidAccessKeyId": PermissionDenied,
    "SignatureDoesNotMatch": PermissionDenied,
    "AccessDenied": PermissionDenied,
}
_REJECTED_CREDENTIALS = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch"})
_OS_ERROR = re.compile(r"\(os error (\d+)\)")
_ERRNO_KINDS = {
    errno.ENOENT: "NotFound",
    errno.EISDIR: "IsADirectory",
    errno.ENOTDIR: "NotADirectory",
    errno.EEXIST: "AlreadyExists",
    errno.EACCES: "PermissionDenied",
    errno.EPERM: "PermissionDenied",
}
_CODE = re.compile(r'code: "(\w+)"')
_REQUEST_ID = re.compile(r'(?:request_id: |"x-amz-request-id": |"x-amzn-requestid": )"([^"]+)"')
_UNREACHABLE = (
    ("connection refused", "connection refused"),
    ("dns error", "host name not found"),
    ("timeout", "no answer in time"),
    ("timed out", "no answer in time"),
)


class OpendalStorage(WithoutMultipart):
    """One operator, built once and shared by every worker thread (OpenDAL operators are thread-safe)."""

    scheme = "opendal"
    names = SettingNames(endpoint=ENDPOINT, region=REGION)
    capabilities = Capabilities(multipart=False)

    def __init__(self, service: str, options: dict[str, str]) -> None:
        self.service = service
        self._options = options
        # `scheme` and `capabilities` are instance attributes, as in RetryingStorage: both depend on the
        # service, which the class cannot know; the scheme is the URL's (`opendal+fs`), as describe() says
        self.scheme = f"opendal+{service}"
        try:
            with self._calls():
                self._bare = opendal.Operator(service, **options)
        except Unsupported as exc:
            raise BadConfiguration(f"opendal has no service {service!r} ({SCHEME})") from exc
        self._op = self._bare.layer(TimeoutLayer(timeout=OP_TIMEOUT, io_timeout=OP_TIMEOUT))
        self._cap = self._bare.capability()
        self._native_metadata = self._cap.write_with_user_metadata
        self._native_type = self._cap.write_with_content_type
        self._file_sidecars = not (self._native_metadata and self._native_type)
        self.capabilities = Capabilities(
            copy=self._cap.copy,
            multipart=False,
            conditional_write=self._cap.write_with_if_match and self._cap.write_with_if_not_exists,
            metadata_in_listing=False,
            ranged_read=self._cap.read,
            max_metadata_bytes=2048 if self._native_metadata else None,
        )

    @classmethod
    def url_settings(cls, bucket: str, path: str, variant: str | None = None) -> dict[str, str]:
        """`opendal+fs:///srv/data` (the path is the root), `opendal+s3://bucket/prefix` (the host is
        the service's bucket or container option, see BUCKET_OPTIONS), `opendal+memory://`, or
        `opendal+<service>:///prefix` for any other service, set up by its OPENDAL_<SERVICE>_* settings."""
        if not variant:
            raise BadConfiguration(
                "an opendal URL names the service: opendal+fs:///path, opendal+s3://bucket"
            )
        service = variant.lower()
        values = {SCHEME: service}
        if service == "fs":
            if bucket not in ("", "localhost") or not path:
                raise BadConfiguration("an opendal+fs URL names a folder on this machine: opendal+fs:///path")
            return {**values, _setting(service, "root"): path, PREFIX: ""}
        option = BUCKET_OPTIONS.get(service)
        if option is None and bucket:
            raise BadConfiguration(
                f"opendal+{service} has no bucket: set OPENDAL_{_upper(service)}_* options"
            )
        if option is not None and not bucket:
            raise BadConfiguration(
                f"an opendal+{service} URL needs a {option}: opendal+{service}://{option}/prefix"
            )
        if option is not None:
            values[_setting(service, option)] = bucket
        return {**values, PREFIX: path}

    @classmethod
    def from_settings(cls, settings: Settings) -> Storage:
        """The seed's settings; fs writes go through a temporary file in `.objfs/tmp` (opendal's
        `atomic_write_dir`) unless set otherwise, so a reader never sees half an object and a rewrite
        drops the old object's extended attributes (its user metadata)."""
        service = settings.get(SCHEME, DEFAULT_SCHEME).lower()
        if service == "fs":
            settings.require(_setting(service, "root"), "the folder: opendal+fs:///path")
        elif service in BUCKET_OPTIONS:
            option = BUCKET_OPTIONS[service]
            settings.require(_setting(service, option), f"the {option}: opendal+{service}://{option}/prefix")
        options = {**operator_options(settings, service), **_generic_options(settings, service)}
        if service == "fs":
            options.setdefault("atomic_write_dir", str(Path(options["root"], RESERVED, "tmp")))
        return cls(service, options)

    def describe(self) -> str:
        return f"{self.scheme}://{self._bucket()}"

    def check(self) -> None:
        """The service's own check (a one-entry listing) with a 5 s limit, so a dead endpoint fails fast."""
        with self._calls():
            self._bare.layer(TimeoutLayer(timeout=CHECK_TIMEOUT, io_timeout=CHECK_TIMEOUT)).check()

    # -- objects ------------------------------------------------------------------------------

    def stat(self, key: str) -> ObjectInfo:
        _check_key(key)
        if key.endswith("/"):
            return self._marker(key)
        with self._calls(key):
            meta = self._op.stat(key)
        return self._info(key, meta, self._sidecar(key) if self._file_sidecars else None)

    def read(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        """One ranged read; OpenDAL refuses a range past the end, so then the size decides what is left."""
        _check_key(key)
        if length == 0 or key.endswith("/"):
            self.stat(key)
            return b""
        span = {"offset": offset} if length is None else {"offset": offset, "size": length}
        try:
            with self._calls(key):
                return self._op.read(key, **span)
        except _RangeNotSatisfied:
            size = self.stat(key).size
        if offset >= size:
            return b""
        with self._calls(key):
            return self._op.read(key, offset=offset, size=size - offset)

    def read_stream(self, key: str, offset: int = 0) -> Iterator[bytes]:
        """One GET from `offset` streamed through the operator's file (it sends no HEAD first)."""
        _check_key(key)
        if key.endswith("/"):
            self.stat(key)
            return
        with self._calls(key):
            reader = self._op.open(key, "rb")
            with contextlib.closing(reader):
                reader.seek(offset)
                while chunk := reader.read(STREAM_CHUNK):
                    yield chunk

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
        """`md5` is checked here before sending: OpenDAL cannot send Content-MD5 for the service to check."""
        _check_key(key)
        verify_md5(key, data, md5)
        if key.endswith("/"):
            self.check_conditions(key, if_match, if_none_match)
            return self._write_marker(key, data, metadata, content_type)
        options, if_match, if_none_match = self._conditions(if_match, if_none_match)
        self.check_conditions(key, if_match, if_none_match)
        if self._native_metadata and metadata:
            options["user_metadata"] = dict(metadata)
        if self._native_type and content_type:
            options["content_type"] = content_type
        with self._calls(key, writing=True, conditional="if_match" in options):
            self._put(key, data, options)
        return self._settle(key, metadata, content_type)

    def list(
        self,
        prefix: str = "",
        delimiter: str | None = "/",
        token: str | None = None,
        limit: int = 1000,
    ) -> ListPage:
        """The names under `prefix` grouped as S3 does, by `page_of_keys`.

        OpenDAL listings are not ordered on every service (fs is not), so each page reads the whole
        level under `prefix` (the whole subtree without the `/` delimiter), skipping what the service
        can skip with `start_after`. Entries without etag and last-modified (memory) cost a stat each,
        but only those on the page returned.
        """
        if prefix.startswith(RESERVED):
            return ListPage()
        recursive = delimiter != "/"
        files, markers, folders = self._entries(prefix, recursive, token)
        placeholders = {key: ObjectInfo(key, 0, "", 0.0) for key in (*files, *folders)}
        page = page_of_keys({**placeholders, **markers}, prefix, delimiter, token, limit)
        page.objects = [
            markers.get(info.key) or self._listed(info.key, files[info.key]) for info in page.objects
        ]
        return page

    def copy(
        self,
        src: str,
        dst: str,
        *,
        metadata: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectInfo:
        """Server-side when nothing changes; OpenDAL's copy cannot replace metadata or copy onto itself."""
        _check_key(src)
        _check_key(dst)
        changes = metadata is not None or content_type is not None or src == dst
        if not self._cap.copy or changes or src.endswith("/") or dst.endswith("/"):
            return self.copy_via_client(src, dst, metadata=metadata, content_type=content_type)
        source = self.stat(src)
        with self._calls(dst, writing=True):
            self._op.copy(src, dst)
        return self._settle(dst, source.metadata, source.content_type)

    def delete(self, key: str) -> None:
        _check_key(key)
        with self._calls(key):
            if key.endswith("/"):
                self._op.delete(_sidecar_path(key))
                if self.service not in FOLDER_SERVICES:
                    self._op.delete(key)
            else:
                self._op.delete(key)
                if self._file_sidecars:
                    self._op.delete(_sidecar_path(key))
        if self.service in FOLDER_SERVICES:
            self._prune(key if key.endswith("/") else _parent(key))

    def url(self, key: str, expires: int = 3600) -> str:
        """A presigned GET where the service signs (S3, GCS, ...), a file:// URL for fs.

        The binding presigns only on its async operator; presigning is local computation, so a
        private event loop in this worker thread runs it.
        """
        _check_key(key)
        if self.service == "fs":
            return Path(self._options.get("root", "."), key).resolve().as_uri()
        if not self._cap.presign_read:
            raise Unsupported(f"{self.scheme} cannot presign URLs", key=key)
        with self._calls(key):
            request = asyncio.run(_presign(self._op.to_async_operator(), key, expires))
        return request.url

    # -- attributes ---------------------------------------------------------------------------

    def _info(self, key: str, meta: Any, sidecar: dict[str, Any] | None) -> ObjectInfo:
        """Attributes from the service where it keeps them, else from a sidecar still valid for it."""
        if meta.is_dir:
            raise NotFound(f"no such key: {key}", key=key)
        size = meta.content_length
        if sidecar is not None and (sidecar.get("size"), sidecar.get("stamp")) != (size, _stamp(meta)):
            sidecar = None
        attrs = sidecar or {}
        if meta.etag:
            etag = meta.etag.strip('"')
        elif meta.last_modified is not None:
            etag = f"{size:x}-{_nanoseconds(meta.last_modified):x}"
        else:
            etag = attrs.get("etag") or self._md5(key)
        mtime = meta.last_modified.timestamp() if meta.last_modified else float(attrs.get("mtime", 0.0))
        metadata = (meta.user_metadata or {}) if self._native_metadata else attrs.get("metadata", {})
        content_type = meta.content_type if self._native_type else attrs.get("content_type")
        return ObjectInfo(key, size, etag, mtime, content_type, dict(metadata))

    def _listed(self, key: str, meta: Any) -> ObjectInfo:
        """A listing's entry, with a stat only when the listing carries neither etag nor last-modified."""
        info = self._info(key, meta, None) if meta.etag or meta.last_modified else self.stat(key)
        return ObjectInfo(info.key, info.size, info.etag, info.mtime)

    def _settle(self, key: str, metadata: dict[str, str] | None, content_type: str | None) -> ObjectInfo:
        """The written object's info (the binding's write returns none), and its sidecar where one is used."""
        with self._calls(key):
            meta = self._op.stat(key)
        sidecar = None
        if self._file_sidecars:
            sidecar = self._attrs(metadata, content_type, meta.content_length, _stamp(meta), marker=False)
            self._put_sidecar(key, sidecar)
        return self._info(key, meta, sidecar)

    def _attrs(
        self,
        metadata: dict[str, str] | None,
        content_type: str | None,
        size: int,
        stamp: str | None,
        *,
        marker: bool,
    ) -> dict[str, Any]:
        """A sidecar: a fresh token and the write time serve services with no etag or mtime of their own.

        A marker's sidecar holds all its attributes, since the service keeps none for a folder.
        """
        attrs: dict[str, Any] = {"size": size, "stamp": stamp, "etag": uuid.uuid4().hex, "mtime": time.time()}
        if marker or not self._native_metadata:
            attrs["metadata"] = dict(metadata or {})
        if marker or not self._native_type:
            attrs["content_type"] = content_type
        return attrs

    def _sidecar(self, key: str) -> dict[str, Any] | None:
        try:
            with self._calls(key):
                raw = self._op.read(_sidecar_path(key))
        except NotFound:
            return None
        try:
            attrs = json.loads(raw)
        except ValueError:
            return None
        return attrs if isinstance(attrs, dict) else None

    def _put_sidecar(self, key: str, attrs: dict[str, Any]) -> None:
        with self._calls(key):
            self._op.write(_sidecar_path(key), json.dumps(attrs).encode())

    def _marker(self, key: str) -> ObjectInfo:
        attrs = self._sidecar(key)
        if attrs is None:
            raise NotFound(f"no such key: {key}", key=key)
        metadata = attrs.get("metadata") or {}
        return ObjectInfo(key, 0, attrs["etag"], float(attrs["mtime"]), attrs.get("content_type"), metadata)

    def _write_marker(
        self, key: str, data: Payload, metadata: dict[str, str] | None, content_type: str | None
    ) -> ObjectInfo:
        """A folder marker: the service's directory (so the prefix shows), a sidecar (so it is an object)."""
        if payload_size(data):
            raise InvalidKey(f"{self._where(key)}: a key ending in / can only be an empty marker", key=key)
        with self._calls(key, writing=True):
            self._op.create_dir(key)
        self._put_sidecar(key, self._attrs(metadata, content_type, 0, None, marker=True))
        return self._marker(key)

    def _md5(self, key: str) -> str:
        """The etag of last resort (no service etag, no mtime, no sidecar): one full read."""
        with self._calls(key):
            return hashlib.md5(self._op.read(key)).hexdigest()

    # -- writes, listings, folders ------------------------------------------------------------

    def _conditions(
        self, if_match: str | None, if_none_match: bool
    ) -> tuple[dict[str, Any], str | None, bool]:
        """The write options for the conditions the service checks itself, and the ones left to a stat."""
        options: dict[str, Any] = {}
        if if_match is not None and self._cap.write_with_if_match:
            options["if_match"] = f'"{if_match}"'
            if_match = None
        if if_none_match and self._cap.write_with_if_not_exists:
            options["if_not_exists"] = True
            if_none_match = False
        return options, if_match, if_none_match

    def _put(self, key: str, data: Payload, options: dict[str, Any]) -> None:
        """Bytes in one write; a file streamed through the operator's writer, never read whole into memory.

        The writer is closed (committed) only after the last chunk: a failure before leaves the object
        as it was (and, on S3, an unfinished upload for the bucket's lifecycle rule to remove).
        """
        if isinstance(data, bytes | bytearray | memoryview):
            self._op.write(key, bytes(data), **options)
            return
        if self._cap.write_can_multi and self._cap.write_multi_min_size:
            options["chunk"] = max(WRITE_CHUNK, self._cap.write_multi_min_size)
        writer = self._op.open(key, "wb", **options)
        for chunk in iter(lambda: data.read(STREAM_CHUNK), b""):
            writer.write(chunk)
        writer.close()

    def _entries(
        self, prefix: str, recursive: bool, token: str | None
    ) -> tuple[dict[str, Any], dict[str, ObjectInfo], set[str]]:
        """Files (key -> listing metadata), markers (key -> info) and other folders under `prefix`."""
        options: dict[str, Any] = {"recursive": recursive}
        if token and self._cap.list_with_start_after:
            options["start_after"] = token
        files: dict[str, Any] = {}
        markers: dict[str, ObjectInfo] = {}
        folders: set[str] = set()
        with self._calls():
            entries = [(entry.path, entry.metadata) for entry in self._op.list(prefix, **options)]
        for path, meta in entries:
            if (
                not path.startswith(prefix)
                or path.startswith(RESERVED)
                or path == "/"
                or (token and path <= token)
            ):
                continue
            if not path.endswith("/"):
                files[path] = meta
            elif recursive or path == prefix:
                with contextlib.suppress(NotFound):
                    markers[path] = self._marker(path)
            else:
                folders.add(path)
        return files, markers, folders

    def _prune(self, folder: str) -> None:
        """Remove folders left empty by a delete, up to the first that holds something or is a marker.

        A racing writer makes the folder's removal fail (not empty), which is fine: it is in use again.
        """
        while folder:
            try:
                if self._sidecar(folder) is not None:
                    return
                with self._calls(folder):
                    if any(entry.path != folder for entry in self._op.list(folder)):
                        return
                    self._op.delete(folder)
            except StorageError:
                return
            folder = _parent(folder)

    # -- errors -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _calls(
        self, key: str | None = None, *, writing: bool = False, conditional: bool = False
    ) -> Iterator[None]:
        """Turn every OpenDAL exception into a typed error, once for all methods.

        A range past the end passes through as `_RangeNotSatisfied` for `read` to answer.
        """
        try:
            yield
        except _SDK_ERRORS as exc:
            if _kind(exc)[0] == "RangeNotSatisfied":
                raise _RangeNotSatisfied(self._where(key), key=key) from exc
            raise self._error(exc, key, writing, conditional) from exc

    def _error(self, exc: Exception, key: str | None, writing: bool, conditional: bool) -> StorageError:
        text = str(exc)
        headline = text.split("\n", 1)[0]
        code = _CODE.search(text)
        code_name = code.group(1) if code else None
        name, temporary = _kind(exc)
        kind = _ERRORS_BY_CODE.get(code_name or "") or _ERRORS.get(name, StorageError)
        if temporary:
            kind = Unavailable
        elif writing and name in _PATH_KINDS:
            kind = InvalidKey
        elif conditional and kind is NotFound:
            kind = PreconditionFailed  # If-Match on an absent key: S3 answers 404, the contract says lost
        request = _REQUEST_ID.search(text)
        message = self._explain(kind, key, code_name, headline, text)
        return kind(message, key=key, request_id=request.group(1) if request else None)

    def _explain(
        self, kind: type[StorageError], key: str | None, code: str | None, headline: str, text: str
    ) -> str:
        """One line naming the location and the cause; never an option's value (it may be a secret)."""
        if kind is NotFound and (key is None or code in ("NoSuchBucket", "ContainerNotFound")):
            return f"bucket '{self._bucket()}' does not exist at {self._endpoint()}"
        if kind is NotFound:
            return f"no such key: {key}"
        if kind is PermissionDenied and code in _REJECTED_CREDENTIALS:
            return f"access denied to {self.describe()}: the credentials were rejected ({code})"
        if kind is Unavailable:
            lowered = text.lower()
            for needle, reason in _UNREACHABLE:
                if needle in lowered:
                    return f"cannot reach {self._endpoint()}: {reason}"
        cause = code or headline.partition("=>")[2].strip() or headline
        return f"{self._where(key)}: {' '.join(cause.split())}"

    def _bucket(self) -> str:
        """The bucket (container, ...) option, or the fs root: what `describe` and messages name."""
        option = BUCKET_OPTIONS.get(self.service, "root")
        return self._options.get(option, "")

    def _endpoint(self) -> str:
        return self._options.get("endpoint") or self.describe()

    def _where(self, key: str | None) -> str:
        return f"{self.describe().rstrip('/')}/{key}" if key else self.describe()


class _RangeNotSatisfied(StorageError):
    """A read range starting at or past the end; `read` turns it into fewer bytes or none."""


def operator_options(settings: Settings, service: str) -> dict[str, str]:
    """Every OPENDAL_<SERVICE>_<OPTION> as `option`, then the flags' OPENDAL_ENDPOINT/OPENDAL_REGION."""
    head = f"OPENDAL_{_upper(service)}_"
    options = {name[len(head) :].lower(): value for name, value in settings.items() if name.startswith(head)}
    for name, option in ((ENDPOINT, "endpoint"), (REGION, "region")):
        if name in settings:
            options[option] = settings[name]
    return options


def _generic_options(settings: Settings, service: str) -> dict[str, str]:
    """The generic settings as OpenDAL's s3 options; any other service, or setting, cannot honour them."""
    for name in (CA_BUNDLE, PROXY):
        if name in settings:
            raise BadConfiguration(f"{name} is not supported by opendal (it uses the system's CA and proxy)")
    sse = settings.sse()
    wanted = [name for name in ("STORAGE_SSE", STORAGE_CLASS) if name in settings]
    if service != "s3" and wanted:
        raise BadConfiguration(f"{wanted[0]} is not supported by opendal+{service}")
    if sse == "sse-c":
        raise BadConfiguration("STORAGE_SSE=sse-c is not supported by opendal")
    options: dict[str, str] = {}
    if sse == "sse-s3":
        options["server_side_encryption"] = "AES256"
    elif sse == "sse-kms":
        options["server_side_encryption"] = "aws:kms"
        if settings.get(SSE_KMS_KEY_ID):
            options["server_side_encryption_aws_kms_key_id"] = settings[SSE_KMS_KEY_ID]
    if settings.get(STORAGE_CLASS):
        options["default_storage_class"] = settings[STORAGE_CLASS]
    return options


async def _presign(operator: Any, key: str, expires: int) -> Any:
    return await operator.presign_read(key, expires)


def _kind(exc: Exception) -> tuple[str, bool]:
    """The OpenDAL error kind and whether OpenDAL calls it temporary.

    The kind is the class name, or the first word of a file object's OSError. Two corrections: the fs
    service reports some errno values as `Unexpected (temporary)` (EISDIR on a read), so a known errno
    decides; and a short read (S3 sends fewer bytes than a range past the end asked for) is a range
    past the end.
    """
    text = str(exc)
    headline = text.split("\n", 1)[0]
    found = _KIND.match(text) if isinstance(exc, OSError) else None
    name = found.group(1) if found else type(exc).__name__
    if "got too little data" in headline:
        return "RangeNotSatisfied", False
    os_error = _OS_ERROR.search(text)
    if os_error and int(os_error.group(1)) in _ERRNO_KINDS:
        return _ERRNO_KINDS[int(os_error.group(1))], False
    return name, "(temporary)" in headline


def _setting(service: str, option: str) -> str:
    return f"OPENDAL_{_upper(service)}_{option.upper()}"


def _upper(service: str) -> str:
    return service.upper().replace("-", "_")


def _check_key(key: str) -> None:
    """Refuse keys OpenDAL would normalise into another key (`a//b`, `/a`) or that reach `.objfs/`."""
    parts = key.rstrip("/").split("/")
    if not key or key.startswith(("/", RESERVED)) or "//" in key or any(p in (".", "..") for p in parts):
        raise InvalidKey(f"invalid key for opendal: {key!r}", key=key)


def _sidecar_path(key: str) -> str:
    """`a/b` -> `.objfs/attrs/a/b.json`, `a/` -> `.objfs/attrs/a/.json`: appending keeps keys apart."""
    return f"{SIDECARS}{key}{SIDECAR_SUFFIX}"


def _parent(key: str) -> str:
    """`a/b/c` and `a/b/` -> `a/`; a top-level key -> ``."""
    head, _, _ = key.rstrip("/").rpartition("/")
    return f"{head}/" if head else ""


def _stamp(meta: Any) -> str | None:
    """What identifies this version natively, so a sidecar can tell it still describes the object."""
    if meta.etag:
        return meta.etag.strip('"')
    return meta.last_modified.isoformat() if meta.last_modified else None


def _nanoseconds(moment: Any) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000
