"""Supabase Storage through its REST API (`<SUPABASE_URL>/storage/v1`), spoken by storage3 over one
shared httpx client, with raw requests on that same client where storage3 lacks an option.

How the object model maps onto Supabase's:
- An object is a Supabase object of the same name; objfs's metadata is the object's user metadata
  (a JSON object the server keeps beside it), so names and values round-trip unchanged.
- A directory marker `a/` is stored as `a/.emptyFolderPlaceholder`, the empty object Supabase's own
  dashboard creates for a folder (object names cannot end in `/`). A key that itself ends in
  `/.emptyFolderPlaceholder` therefore reads back as its folder's marker.
- Listing uses the folder-at-a-time `object/list` call, which returns sub-folders before files and
  pages by offset, so one `list` reads the whole folder (the whole subtree for a flat listing) and
  sorts and pages it here: tokens are the last name returned, and pages never skip or repeat.
  The server matches the folder path with SQL ILIKE, so two folders whose names differ only in
  letter case (or by `_`/`%`, which ILIKE treats as wildcards) are listed together.
- Ranged reads and streaming are raw `GET object/<bucket>/<name>` requests with a Range header
  (storage3's download has none).
- Conditional writes: `if_none_match` is the upload's `x-upsert: false`, which the server checks
  atomically; `if_match` is checked with a stat first (`check_conditions`), so conditional_write
  is False. The REST API verifies no Content-MD5, so `md5` is not sent.
- There is no S3-style multipart upload with a listable upload id (TUS resumable uploads are a
  different protocol): every object is one upload, whose maximum size is a server setting
  (the project's upload size limit, 50 MB on the free plan).
- `copy` needs a Storage server from 2024 or later, whose copy takes `copyMetadata` and the
  `x-metadata` header; older servers keep the source's metadata, which breaks chmod on them.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import ssl
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from storage3 import SyncStorageClient
from storage3.exceptions import StorageApiError

from .base import (
    STREAM_CHUNK,
    BadConfiguration,
    Capabilities,
    InvalidKey,
    ListPage,
    MultipartUpload,
    NotFound,
    ObjectInfo,
    Payload,
    PermissionDenied,
    PreconditionFailed,
    Storage,
    StorageError,
    Unavailable,
    WithoutMultipart,
    one_line,
    payload_bytes,
    unreachable_reason,
)
from .listing import page_of_keys
from .settings import CA_BUNDLE, PROXY, SSE, STORAGE_CLASS, SettingNames, Settings

PLACEHOLDER = ".emptyFolderPlaceholder"
"""The empty object Supabase uses for a folder; objfs stores a marker key `a/` as `a/<PLACEHOLDER>`."""
LIST_PAGE = 1000
DEFAULT_CONTENT_TYPE = "application/octet-stream"
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
CHECK_TIMEOUT = httpx.Timeout(4.0)
REQUEST_ID_HEADERS = ("sb-request-id", "x-request-id")
PAST_THE_END = frozenset({"InvalidRange", "invalid_range"})
REJECTED_KEY = frozenset({"InvalidJWT", "InvalidSignature", "ExpiredToken"})
_FOLDER = ObjectInfo("", 0, "", 0.0)
"""Stands for a sub-folder handed to `page_of_keys` as `name/`: it rolls such a key up into a
sub-prefix without reading its info."""


class SupabaseStorage(WithoutMultipart):
    """One bucket; every method is one request, plus a stat after write and copy for the new etag."""

    scheme = "supabase"
    names = SettingNames(bucket="SUPABASE_BUCKET_NAME", endpoint="SUPABASE_URL")
    multipart_refusal = "; objects are written in one upload (up to the project's upload size limit)"
    capabilities = Capabilities(
        copy=True,
        multipart=False,
        conditional_write=False,
        metadata_in_listing=False,
        max_metadata_bytes=1024 * 1024,  # the server's cap on the metadata's JSON text
        etag_is_md5=False,  # the server stores bodies with S3 multipart uploads
    )

    def __init__(
        self,
        url: str,
        bucket: str,
        api_key: str,
        *,
        proxy: str | None = None,
        ca_bundle: str | None = None,
    ) -> None:
        self.bucket = bucket
        self._url = url.rstrip("/")
        self._api = f"{self._url}/storage/v1"
        headers = {"apikey": api_key, "Authorization": f"Bearer {api_key}"}
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
        # httpx never retries by itself; objfs.storage.retrying retries every backend the same way
        self._http = httpx.Client(headers=headers, timeout=TIMEOUT, proxy=proxy, verify=verify)
        self._files = SyncStorageClient(f"{self._api}/", headers, http_client=self._http).from_(bucket)

    @classmethod
    def from_settings(cls, settings: Settings) -> Storage:
        for unsupported in (SSE, STORAGE_CLASS):
            if settings.get(unsupported) is not None:
                raise BadConfiguration(f"{unsupported} is not supported by supabase")
        url = settings.require("SUPABASE_URL", "the project URL, e.g. https://xyz.supabase.co")
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise BadConfiguration("SUPABASE_URL must be an http(s) URL, e.g. https://xyz.supabase.co")
        return cls(
            url,
            settings.require("SUPABASE_BUCKET_NAME", "the bucket: supabase://bucket/prefix"),
            settings.require("SUPABASE_API_KEY", "the project's service-role (or anon) key"),
            proxy=settings.get(PROXY),
            ca_bundle=settings.file(CA_BUNDLE),
        )

    def describe(self) -> str:
        return f"{self.scheme}://{self.bucket}"

    def check(self) -> None:
        """Read the bucket's record with a short timeout: it proves the key and the bucket at once,
        where a listing of a missing bucket is merely empty."""
        with self._calls():
            self._raise_for(self._http.get(f"{self._api}/bucket/{quote(self.bucket)}", timeout=CHECK_TIMEOUT))

    def stat(self, key: str) -> ObjectInfo:
        with self._calls(key):
            info = self._files.info(_path(key))
        return ObjectInfo(
            key,
            int(info.get("size") or 0),
            _etag(info.get("etag")),
            _time(info.get("last_modified")),
            info.get("content_type"),
            _user_metadata(info.get("metadata")),
        )

    def read(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        if length == 0:
            self.stat(key)  # an empty range has no request, but a missing key must be NotFound
            return b""
        with self._calls(key):
            response = self._http.get(self._object_url(key), headers=_byte_range(offset, length))
            if self._past_the_end(response):
                return b""
            return response.content

    def read_stream(self, key: str, offset: int = 0) -> Iterator[bytes]:
        with (
            self._calls(key),
            self._http.stream("GET", self._object_url(key), headers=_byte_range(offset, None)) as response,
        ):
            if response.is_error:
                response.read()
            if self._past_the_end(response):
                return
            yield from response.iter_bytes(STREAM_CHUNK)

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
        """Upload, then stat: the upload's answer carries no etag."""
        self.check_conditions(key, if_match, False)
        options: dict[str, Any] = {
            "content-type": content_type or DEFAULT_CONTENT_TYPE,
            "metadata": dict(metadata or {}),  # {} rather than nothing, so a rewrite drops old metadata
            "upsert": "false" if if_none_match else "true",
        }
        with self._calls(key):
            self._files.upload(_path(key), _uploadable(data), options)
        return self.stat(key)

    def list(
        self,
        prefix: str = "",
        delimiter: str | None = "/",
        token: str | None = None,
        limit: int = 1000,
    ) -> ListPage:
        folder, slash, search = prefix.rpartition("/")
        folder += slash
        if delimiter == "/":
            entries = {
                key: info or _FOLDER for key, info in self._folder(folder, search) if key.startswith(prefix)
            }
        else:
            entries = dict(self._walk(folder, search, prefix, token))
        return page_of_keys(entries, prefix, delimiter, token, limit)

    def copy(
        self,
        src: str,
        dst: str,
        *,
        metadata: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectInfo:
        """Server-side, replacing the destination (`x-upsert`), so copying onto itself with new
        metadata is how chmod is persisted; then a stat for the new etag."""
        body: dict[str, Any] = {
            "bucketId": self.bucket,
            "sourceKey": _name(src),
            "destinationKey": _name(dst),
            "copyMetadata": metadata is None,
        }
        headers = {"x-upsert": "true"}
        if metadata is not None:
            headers["x-metadata"] = base64.b64encode(json.dumps(metadata).encode()).decode()
        if content_type:
            body["metadata"] = {"mimetype": content_type}
        with self._calls(src):
            self._raise_for(self._http.post(f"{self._api}/object/copy", json=body, headers=headers))
        return self.stat(dst)

    def delete(self, key: str) -> None:
        with self._calls(key):
            self._files.remove([_name(key)])

    def list_multipart(self, prefix: str = "") -> list[MultipartUpload]:
        """Refused rather than empty, so `objfs gc --all` says why there is nothing to find."""
        raise self._no_multipart(None)

    def url(self, key: str, expires: int = 3600) -> str:
        with self._calls(key):
            signed = self._files.create_signed_url(_path(key), expires)
        return str(signed["signedURL"])

    def close(self) -> None:
        self._http.close()

    # -- listing ------------------------------------------------------------------------

    def _folder(self, folder: str, search: str) -> Iterator[tuple[str, ObjectInfo | None]]:
        """One folder's entries whose names start with `search`, every page of them: a file as
        (key, info), a sub-folder as (its key + '/', None)."""
        options: dict[str, Any] = {"limit": LIST_PAGE, "offset": 0, "search": search}
        while True:
            with self._calls():
                rows = self._files.list(folder, options)
            for row in rows:
                entry = _entry(folder, row)
                if entry is not None:
                    yield entry
            if len(rows) < LIST_PAGE:
                return
            options["offset"] += len(rows)

    def _walk(
        self, folder: str, search: str, prefix: str, token: str | None
    ) -> Iterator[tuple[str, ObjectInfo]]:
        """Every object under `prefix`, descending into sub-folders, except whole sub-folders whose
        keys all sort at or before `token`."""
        for key, info in self._folder(folder, search):
            if not key.startswith(prefix):
                continue
            if info is not None:
                yield key, info
            elif token is None or key > token or token.startswith(key):
                yield from self._walk(key, "", prefix, token)

    # -- requests and errors ------------------------------------------------------------

    def _object_url(self, key: str) -> str:
        return f"{self._api}/object/{quote(self.bucket, safe='')}/{quote(_name(key))}"

    def _past_the_end(self, response: httpx.Response) -> bool:
        """True for the answer to a range that starts at or past the end (S3's InvalidRange, which
        Supabase passes on as HTTP 400 or 416); raises for any other error."""
        try:
            self._raise_for(response)
        except StorageApiError as exc:
            if exc.code in PAST_THE_END or _status(exc) == 416:
                return True
            raise
        return False

    @staticmethod
    def _raise_for(response: httpx.Response) -> None:
        """A raw request's error as storage3 raises it, so one mapping serves both kinds of call."""
        try:
            response.raise_for_status()
        except httpx.HTTPStatusError as exc:
            try:
                body = response.json()
                error = StorageApiError(body["message"], body["error"], body["statusCode"])
            except (ValueError, KeyError, TypeError):
                error = StorageApiError(one_line(response.text)[:200], "", response.status_code)
            raise error from exc

    @contextlib.contextmanager
    def _calls(self, key: str | None = None) -> Iterator[None]:
        """Turn every storage3 and httpx failure into a typed error, once for all methods."""
        try:
            yield
        except StorageApiError as exc:
            raise self._service_error(exc, key) from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise BadConfiguration(f"SUPABASE_URL {self._url} is not usable: {exc}", key=key) from exc
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach {self._url}: {_unreachable_reason(exc)}", key=key) from exc
        except httpx.HTTPError as exc:  # an answer that broke off or would not decode: worth a retry
            raise Unavailable(f"{self._where(key)}: {type(exc).__name__}: {exc}", key=key) from exc

    def _service_error(self, exc: StorageApiError, key: str | None) -> StorageError:
        status, code = _status(exc), str(exc.code)
        if status == 404:
            kind: type[StorageError] = NotFound
        elif status in (401, 403) or code in REJECTED_KEY:
            kind = PermissionDenied
        elif status == 409:
            kind = PreconditionFailed
        elif code == "InvalidKey":
            kind = InvalidKey
        elif status == 429 or status >= 500 or status == 423:
            kind = Unavailable
        else:
            kind = StorageError
        return kind(self._explain(kind, key, exc), key=key, request_id=_request_id(exc))

    def _explain(self, kind: type[StorageError], key: str | None, exc: StorageApiError) -> str:
        """One line a user can act on: which bucket or key, and the service's own words."""
        detail = f"{exc.message} ({exc.code or _status(exc)})"
        if kind is NotFound and (key is None or "bucket" in str(exc.code).lower()):
            return f"bucket '{self.bucket}' does not exist at {self._url}"
        if kind is NotFound:
            return f"no such key: {key}"
        if kind is PermissionDenied and key is None:
            return f"access denied to bucket '{self.bucket}': {detail}"
        if kind is PreconditionFailed:
            return f"{key} already exists"
        return f"{self._where(key)}: {detail}"

    def _where(self, key: str | None) -> str:
        return f"{self.scheme}://{self.bucket}/{key}" if key else self.describe()


def _name(key: str) -> str:
    """The Supabase object name of a key: a marker `a/` is its folder's placeholder object."""
    segments = key.split("/")
    if not key or "." in segments or ".." in segments:
        raise InvalidKey(
            f"supabase object names cannot be empty or contain . or .. segments: {key!r}", key=key
        )
    return key + PLACEHOLDER if key.endswith("/") else key


def _path(key: str) -> str:
    """The name as storage3's object-path methods take it: they percent-decode it first."""
    return _name(key).replace("%", "%25")


def _entry(folder: str, row: dict[str, Any]) -> tuple[str, ObjectInfo | None] | None:
    """A listing row as (key, info), (sub-folder key, None), or None for a placeholder at the top."""
    name = row["name"]
    if row.get("id") is None:
        return f"{folder}{name}/", None
    if name == PLACEHOLDER:
        key = folder
        if not key:
            return None
    else:
        key = folder + name
    system = row.get("metadata") or {}
    mtime = _time(system.get("lastModified") or row.get("updated_at"))
    size = int(system.get("size") or 0)
    return key, ObjectInfo(key, size, _etag(system.get("eTag")), mtime, system.get("mimetype"))


def _uploadable(data: Payload) -> bytes | io.BufferedReader | io.FileIO:
    """What storage3's upload accepts: bytes or a plain binary file (streamed); anything else is read."""
    if isinstance(data, io.BufferedReader | io.FileIO):
        data.seek(0)
        return data
    return payload_bytes(data)


def _user_metadata(value: Any) -> dict[str, str]:
    """The object's user metadata; values objfs did not write may be any JSON, kept as JSON text."""
    if not isinstance(value, dict):
        return {}
    return {str(name): item if isinstance(item, str) else json.dumps(item) for name, item in value.items()}


def _etag(value: Any) -> str:
    return str(value or "").strip('"')


def _time(value: Any) -> float:
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return 0.0


def _byte_range(offset: int, length: int | None) -> dict[str, str]:
    if offset == 0 and length is None:
        return {}
    end = "" if length is None else str(offset + length - 1)
    return {"Range": f"bytes={offset}-{end}"}


def _status(exc: StorageApiError) -> int:
    """The status the body states (Supabase answers most errors with HTTP 400 and the real status
    as `statusCode` in the body), else the HTTP status."""
    try:
        return int(exc.status)
    except (TypeError, ValueError):
        return 0


def _request_id(exc: BaseException) -> str | None:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, httpx.HTTPStatusError):
            headers = cause.response.headers
            return next((headers[name] for name in REQUEST_ID_HEADERS if name in headers), None)
        cause = cause.__cause__ or cause.__context__
    return None


def _unreachable_reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time (timed out)"
    return unreachable_reason(exc, detail=f"connection failed ({type(exc).__name__}: {one_line(exc)})")
