"""Google Cloud Storage through google-cloud-storage's JSON API client.

Credentials: the service-account JSON in `GOOGLE_STORAGE_SERVICE_ACCOUNT_JSON_BASE64` (base64, as the
seed's deployments store it), else Application Default Credentials. An emulator endpoint given over
plain http (`GOOGLE_STORAGE_ENDPOINT=http://...` or `STORAGE_EMULATOR_HOST`) gets anonymous credentials,
since a token must never travel in clear text and emulators check none.

Choices this backend makes, and why:

- Etag = the object's generation number. It changes on every write of the data (including a copy,
  which is a rewrite) and is exactly what `ifGenerationMatch` takes, so `if_match` is checked by the
  service; `if_none_match` is `ifGenerationMatch=0`.
- Multipart = parts as temporary objects under `.objfs/uploads/<key>/<upload id>/` and `compose`
  (32 sources per request, in rounds) on completion, then the parts are deleted. GCS's XML multipart
  API would be the native shape, but fake-gcs-server does not serve it, so it could not be tested.
  `.objfs/` is reserved: it never appears in a listing and no key under it can be written.
  Parts stay in the bucket's default class so a cold class's minimum storage duration is not billed
  for objects that live seconds.
- Archive-class objects are readable on GCS (no restore step), so `Archived` never applies.
- SSE: `sse-s3` is GCS's default (Google-managed keys); `sse-kms` sets the object's KMS key; `sse-c`
  sends the customer key on every request that touches the bytes. The SDK's compose cannot send that
  key, so multipart is not offered under `sse-c` (the instance's capabilities say so).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import hashlib
import io
import json
import logging
import os
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

import google.auth
import requests
import urllib3
from google.api_core import exceptions as api_errors
from google.auth import exceptions as auth_errors
from google.auth.credentials import AnonymousCredentials, Credentials
from google.auth.transport.requests import AuthorizedSession, Request
from google.cloud import storage
from google.cloud.storage.exceptions import DataCorruption
from google.oauth2 import service_account

from .base import (
    STREAM_CHUNK,
    BadConfiguration,
    Capabilities,
    IntegrityError,
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
    Unsupported,
    UploadedPart,
    one_line,
    payload_size,
)
from .settings import CA_BUNDLE, PROXY, SSE_KMS_KEY_ID, STORAGE_CLASS, SettingNames, Settings

log = logging.getLogger(__name__)

SERVICE_ACCOUNT = "GOOGLE_STORAGE_SERVICE_ACCOUNT_JSON_BASE64"
EMULATOR_HOST = "STORAGE_EMULATOR_HOST"
GOOGLE_ENDPOINT = "https://storage.googleapis.com"
SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)
RESERVED = ".objfs/"
UPLOADS = f"{RESERVED}uploads/"
UPLOAD_RECORD = "upload"
COMPOSE_LIMIT = 32
"""Sources one compose request accepts."""
TIMEOUT = (10.0, 60.0)
CHECK_TIMEOUT = (3.0, 5.0)
POOL_SIZE = 32
CLEANUP_WORKERS = 8
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_RATE_LIMITED = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
_BAD_DIGEST = re.compile(r"\b(md5|crc32c)\b", re.IGNORECASE)
"""GCS's 400 for a body that does not match its digest: 'Provided MD5 hash ... doesn't match ...'."""


@dataclass(frozen=True)
class GcsConnection:
    """How to reach and authenticate to GCS, and what every new object gets (class, encryption).

    Secrets stay out of `repr`.
    """

    endpoint: str | None = None
    service_account: dict[str, Any] | None = field(default=None, repr=False)
    ca_bundle: str | None = None
    proxy: str | None = None
    kms_key: str | None = None
    sse_c_key: bytes | None = field(default=None, repr=False)
    storage_class: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> GcsConnection:
        ca_bundle = settings.get(CA_BUNDLE)
        if ca_bundle is not None and not os.path.isfile(ca_bundle):
            raise BadConfiguration(f"{CA_BUNDLE} names no readable file")
        return cls(
            endpoint=_endpoint(settings),
            service_account=_service_account(settings.get(SERVICE_ACCOUNT)),
            ca_bundle=ca_bundle,
            proxy=settings.get(PROXY),
            kms_key=settings.get(SSE_KMS_KEY_ID) if settings.sse() == "sse-kms" else None,
            sse_c_key=settings.sse_c_key(),
            storage_class=(settings.get(STORAGE_CLASS) or "").upper() or None,
        )

    @property
    def anonymous(self) -> bool:
        """No service account and a plain-http endpoint: an emulator, which checks no credentials."""
        return self.service_account is None and (self.endpoint or "").startswith("http://")

    def credentials(self) -> tuple[Credentials, str | None]:
        if self.service_account is not None:
            try:
                creds = service_account.Credentials.from_service_account_info(
                    self.service_account, scopes=SCOPES
                )
            except (ValueError, KeyError) as exc:
                raise BadConfiguration(f"{SERVICE_ACCOUNT} is not a usable service-account key") from exc
            return creds, self.service_account.get("project_id")
        if self.anonymous:
            return AnonymousCredentials(), None
        try:
            return google.auth.default(scopes=SCOPES)
        except auth_errors.DefaultCredentialsError as exc:
            raise BadConfiguration(
                f"no Google credentials: set {SERVICE_ACCOUNT} or configure Application Default "
                f"Credentials ({one_line(exc)})"
            ) from exc

    def session(self, credentials: Credentials) -> AuthorizedSession:
        """One pooled session for all threads, with the proxy and CA bundle also on token refreshes."""
        session = AuthorizedSession(
            credentials, auth_request=Request(self._configured(requests.Session())), refresh_timeout=10
        )
        return self._configured(session)

    def _configured(self, session: requests.Session) -> Any:
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=POOL_SIZE, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        if self.proxy:
            session.proxies = {"http": self.proxy, "https": self.proxy}
        if self.ca_bundle:
            session.verify = self.ca_bundle
        return session


def _endpoint(settings: Settings) -> str | None:
    """GOOGLE_STORAGE_ENDPOINT, else STORAGE_EMULATOR_HOST (which is often a bare host:port)."""
    endpoint = settings.get(GcsStorage.names.endpoint or "") or settings.get(EMULATOR_HOST)
    if endpoint is None:
        return None
    return (endpoint if "://" in endpoint else f"http://{endpoint}").rstrip("/")


def _service_account(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        info = json.loads(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise BadConfiguration(f"{SERVICE_ACCOUNT} must be base64 of a service-account JSON key") from exc
    if not isinstance(info, dict):
        raise BadConfiguration(f"{SERVICE_ACCOUNT} must be base64 of a service-account JSON key")
    return info


class GcsStorage(Storage):
    """One bucket. The client, its session and its bucket handle are shared by all threads; every
    call builds its own `Blob`, which holds per-object state."""

    scheme = "gs"
    names = SettingNames(bucket="GOOGLE_STORAGE_BUCKET_NAME", endpoint="GOOGLE_STORAGE_ENDPOINT")
    capabilities = Capabilities(
        copy=True,
        multipart=True,
        conditional_write=True,
        metadata_in_listing=True,
        min_part_size=1,
        max_part_count=10_000,
        max_metadata_bytes=8192,
        etag_is_md5=False,
    )

    def __init__(self, bucket: str, connection: GcsConnection | None = None) -> None:
        self.bucket = bucket
        self._connection = connection or GcsConnection()
        self._endpoint = self._connection.endpoint or GOOGLE_ENDPOINT
        credentials, project = self._connection.credentials()
        self._credentials = credentials
        options = {"api_endpoint": self._connection.endpoint} if self._connection.endpoint else None
        try:
            self._client = storage.Client(
                project=project,
                credentials=credentials,
                _http=self._connection.session(credentials),
                client_options=options,
            )
        except ValueError as exc:
            raise BadConfiguration(f"cannot configure {self.describe()}: {one_line(exc)}") from exc
        # The SDK fetches bucket metadata in a background thread for tracing attributes: a request
        # nobody asked for, outside the one-attempt policy, so it is switched off.
        self._client._bucket_metadata_cache = None
        self._bucket = self._client.bucket(bucket)
        if self._connection.sse_c_key is not None:
            self.capabilities = replace(self.capabilities, multipart=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Storage:
        bucket = settings.require(cls.names.bucket or "", f"the bucket: {cls.scheme}://bucket/prefix")
        return cls(bucket, GcsConnection.from_settings(settings))

    def describe(self) -> str:
        return f"{self.scheme}://{self.bucket}"

    def check(self) -> None:
        """List at most one object with short timeouts: proves bucket, credentials and reachability."""
        with self._calls():
            iterator = self._client.list_blobs(self._bucket, max_results=1, retry=None, timeout=CHECK_TIMEOUT)
            next(iterator.pages, None)

    def stat(self, key: str) -> ObjectInfo:
        return _info(self._get_blob(key))

    def read(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        if length == 0:
            self.stat(key)  # an empty range reads nothing, but a missing key must still be NotFound
            return b""
        with self._calls(key):
            response = self._get(key, offset, length)
            if response is None:
                return b""
            with contextlib.closing(response):
                return response.raw.read(decode_content=False)

    def read_stream(self, key: str, offset: int = 0) -> Iterator[bytes]:
        with self._calls(key):
            response = self._get(key, offset, None)
            if response is None:
                return
            with contextlib.closing(response):
                yield from response.raw.stream(STREAM_CHUNK, decode_content=False)

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
        """md5 goes in the object resource (`md5Hash`), which GCS checks against the bytes it got."""
        _check_user_key(key)
        blob = self._blob(key, metadata, with_class=True)
        if md5 is not None:
            blob.md5_hash = md5
        generation = 0 if if_none_match else _generation(key, if_match)
        with self._calls(key):
            self._upload(blob, data, content_type, if_generation_match=generation)
        return _info(blob)

    def list(
        self,
        prefix: str = "",
        delimiter: str | None = "/",
        token: str | None = None,
        limit: int = 1000,
    ) -> ListPage:
        """Pages of our own: the token is the last name returned and the next page starts there.

        The service's own page tokens would do on GCS, but fake-gcs-server counts only objects
        against `maxResults` and repeats sub-prefixes on every page; starting each page at
        `startOffset` and cutting it here gives pages that never skip or repeat on both.
        """
        entries, more = self._entries(prefix, delimiter, token, limit)
        taken = sorted(entries)[:limit]
        page = ListPage(next_token=taken[-1] if more and taken else None)
        for name in taken:
            if name.startswith(RESERVED):
                continue
            info = entries[name]
            if info is None:
                page.prefixes.append(name)
            else:
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
        """A rewrite, with the destination's attributes always spelled out (kept or replaced).

        Copying onto itself is a rewrite too, which GCS does in place; the generation changes.
        """
        _check_user_key(dst)
        source = self._get_blob(src)
        target = self._blob(dst, (source.metadata if metadata is None else metadata) or {}, with_class=True)
        target.content_type = content_type or source.content_type
        for name in ("cache_control", "content_disposition", "content_encoding", "content_language"):
            if getattr(source, name) is not None:
                setattr(target, name, getattr(source, name))
        with self._calls(dst):
            self._rewrite(target, self._blob(src))
        return _info(target)

    def delete(self, key: str) -> None:
        with contextlib.suppress(NotFound), self._calls(key):
            self._bucket.blob(key).delete(retry=None, timeout=TIMEOUT)

    # -- multipart: parts as objects under .objfs/uploads/, composed on completion ---------------

    def create_multipart(
        self, key: str, *, metadata: dict[str, str] | None = None, content_type: str | None = None
    ) -> str:
        """The upload's record holds the final object's metadata and content type until completion."""
        _check_user_key(key)
        if not self.capabilities.multipart:
            raise Unsupported("multipart uploads are not available with STORAGE_SSE=sse-c on GCS", key=key)
        upload_id = uuid.uuid4().hex
        record = self._bucket.blob(_upload_name(key, upload_id, UPLOAD_RECORD))
        record.metadata = metadata or None
        with self._calls(key):
            self._upload(record, b"", content_type, if_generation_match=0)
        return upload_id

    def upload_part(self, key: str, upload_id: str, number: int, data: Payload, md5: str) -> UploadedPart:
        """The part's etag is its generation, so completion composes exactly the parts reported."""
        part = self._blob(_upload_name(key, _checked(key, upload_id), f"{number:05d}"))
        part.md5_hash = md5
        with self._calls(key):
            self._upload(part, data, None)
        return UploadedPart(number, str(part.generation))

    def complete_multipart(self, key: str, upload_id: str, parts: list[UploadedPart]) -> ObjectInfo:
        record = self._upload_record(key, _checked(key, upload_id))
        target = self._blob(key, record.metadata, with_class=False)
        target.content_type = record.content_type
        try:
            sources = [
                (self._blob(_upload_name(key, upload_id, f"{part.number:05d}")), _generation(key, part.etag))
                for part in parts
            ]
            with self._calls(key):
                self._compose(key, upload_id, target, sources)
        except (NotFound, PreconditionFailed) as exc:
            message = f"{self._where(key)}: a part is missing or was replaced since it was reported"
            raise IntegrityError(message, key=key, request_id=exc.request_id) from exc
        self._remove_upload(key, upload_id, quietly=True)
        return _info(target)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """An id this backend could not have made names no upload, so there is nothing to abort."""
        if _UPLOAD_ID.fullmatch(upload_id):
            self._remove_upload(key, upload_id, quietly=False)

    def list_multipart(self, prefix: str = "") -> list[MultipartUpload]:
        """Every upload with a record or a part left, so a restart also cleans half-removed ones."""
        started: dict[tuple[str, str], float] = {}
        for blob in self._upload_objects(f"{UPLOADS}{prefix}"):
            key, upload_id, *leaf = blob.name[len(UPLOADS) :].rsplit("/", 2)
            if leaf and _UPLOAD_ID.fullmatch(upload_id):
                created = blob.time_created.timestamp() if blob.time_created else 0.0
                started[key, upload_id] = min(created, started.get((key, upload_id), created))
        return [MultipartUpload(key, upload_id, at) for (key, upload_id), at in sorted(started.items())]

    def url(self, key: str, expires: int = 3600) -> str:
        """A V4 signed URL where the credentials hold a key; the plain media URL on an emulator."""
        if self._connection.sse_c_key is not None:
            raise Unsupported("a browser cannot present the SSE-C key an object URL would need", key=key)
        if isinstance(self._credentials, AnonymousCredentials):
            return f"{self._media_url(key)}?alt=media"
        try:
            return self._bucket.blob(key).generate_signed_url(
                expiration=datetime.timedelta(seconds=expires),
                version="v4",
                api_access_endpoint=self._endpoint,
            )
        except (AttributeError, auth_errors.GoogleAuthError) as exc:
            raise Unsupported(f"cannot sign a URL for {self._where(key)}: {one_line(exc)}", key=key) from exc

    def close(self) -> None:
        self._client.close()

    # -- helpers -------------------------------------------------------------------------

    def _blob(self, key: str, metadata: dict[str, str] | None = None, *, with_class: bool = False) -> Any:
        """A handle carrying the configured encryption; `with_class` for objects meant to stay."""
        blob = self._bucket.blob(
            key, encryption_key=self._connection.sse_c_key, kms_key_name=self._connection.kms_key
        )
        if metadata is not None:
            blob.metadata = dict(metadata)
        if with_class and self._connection.storage_class:
            blob.storage_class = self._connection.storage_class
        return blob

    def _get_blob(self, key: str) -> Any:
        with self._calls(key):
            blob = self._bucket.get_blob(
                key, encryption_key=self._connection.sse_c_key, retry=None, timeout=TIMEOUT
            )
        if blob is None:
            raise NotFound(f"no such key: {key}", key=key)
        return blob

    def _upload(
        self, blob: Any, data: Payload, content_type: str | None, if_generation_match: int | None = None
    ) -> None:
        stream = io.BytesIO(data) if isinstance(data, bytes | bytearray | memoryview) else data
        blob.upload_from_file(
            stream,
            size=payload_size(data),
            content_type=content_type,
            if_generation_match=if_generation_match,
            retry=None,
            timeout=TIMEOUT,
        )

    def _entries(
        self, prefix: str, delimiter: str | None, token: str | None, limit: int
    ) -> tuple[dict[str, ObjectInfo | None], bool]:
        """At least `limit` names after `token` (objects with their info, sub-prefixes with None),
        or all that are left, and whether more follow."""
        entries: dict[str, ObjectInfo | None] = {}
        with self._calls():
            iterator = self._client.list_blobs(
                self._bucket,
                prefix=prefix,
                delimiter=delimiter or None,
                start_offset=token or None,
                page_size=limit,
                retry=None,
                timeout=TIMEOUT,
            )
            for page in iterator.pages:
                entries.update(
                    (blob.name, _info(blob)) for blob in page if token is None or blob.name > token
                )
                entries.update((name, None) for name in page.prefixes if token is None or name > token)
                if len(entries) >= limit:
                    break
        return entries, len(entries) > limit or iterator.next_page_token is not None

    def _get(self, key: str, offset: int, length: int | None) -> requests.Response | None:
        """One GET of the stored bytes (no transcoding); None when the range starts past the end."""
        headers = {"Accept-Encoding": "gzip", **_encryption_headers(self._connection.sse_c_key)}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            headers["Range"] = f"bytes={offset}-{end}"
        response = self._client._http.request(
            "GET", f"{self._media_url(key)}?alt=media", headers=headers, stream=True, timeout=TIMEOUT
        )
        if response.status_code == 416:
            response.close()
            return None
        if response.status_code >= 400:
            with contextlib.closing(response):
                raise api_errors.from_http_response(response)
        return response

    def _media_url(self, key: str) -> str:
        return f"{self._endpoint}/download/storage/v1/b/{quote(self.bucket, safe='')}/o/{quote(key, safe='')}"

    def _rewrite(self, target: Any, source: Any) -> None:
        """A rewrite may take several calls for a large object across locations or classes."""
        token, _, _ = target.rewrite(source, retry=None, timeout=TIMEOUT)
        while token is not None:
            token, _, _ = target.rewrite(source, token=token, retry=None, timeout=TIMEOUT)

    def _compose(self, key: str, upload_id: str, target: Any, sources: list[tuple[Any, int | None]]) -> None:
        """Compose in rounds of 32 into intermediate objects, then into the target.

        The configured storage class is applied by a rewrite in place afterwards, because compose
        gives the result the class of its sources (fake-gcs-server ignores a class given to compose).
        """
        level = 0
        while len(sources) > COMPOSE_LIMIT:
            level += 1
            merged = []
            for start in range(0, len(sources), COMPOSE_LIMIT):
                group = sources[start : start + COMPOSE_LIMIT]
                partial = self._blob(_upload_name(key, upload_id, f"c{level}-{start:05d}"))
                partial.compose(
                    [blob for blob, _ in group],
                    if_source_generation_match=[g for _, g in group],
                    retry=None,
                    timeout=TIMEOUT,
                )
                merged.append((partial, partial.generation))
            sources = merged
        target.compose(
            [blob for blob, _ in sources],
            if_source_generation_match=[g for _, g in sources],
            retry=None,
            timeout=TIMEOUT,
        )
        wanted = self._connection.storage_class
        if wanted and target.storage_class != wanted:
            target.storage_class = wanted
            self._rewrite(target, self._blob(key))

    def _upload_record(self, key: str, upload_id: str) -> Any:
        try:
            return self._get_blob(_upload_name(key, upload_id, UPLOAD_RECORD))
        except NotFound:
            raise NotFound(f"no multipart upload of {key} with that id", key=key) from None

    def _upload_objects(self, prefix: str) -> list[Any]:
        with self._calls():
            return list(self._client.list_blobs(self._bucket, prefix=prefix, retry=None, timeout=TIMEOUT))

    def _remove_upload(self, key: str, upload_id: str, *, quietly: bool) -> None:
        """Parts (and intermediate composites) first, the record last, so a removal cut short still
        lists as an upload and is finished by the next abort."""
        names = [blob.name for blob in self._upload_objects(_upload_name(key, upload_id, ""))]
        record = _upload_name(key, upload_id, UPLOAD_RECORD)
        try:
            with ThreadPoolExecutor(CLEANUP_WORKERS, thread_name_prefix="objfs-gcs-cleanup") as pool:
                list(pool.map(self._delete_internal, [name for name in names if name != record]))
            self._delete_internal(record)
        except StorageError as exc:
            if not quietly:
                raise
            log.warning("%s: completed, but its parts are left for cleanup: %s", key, exc)

    def _delete_internal(self, name: str) -> None:
        with contextlib.suppress(NotFound), self._calls(name):
            self._bucket.blob(name).delete(retry=None, timeout=TIMEOUT)

    @contextlib.contextmanager
    def _calls(self, key: str | None = None) -> Iterator[None]:
        """Turn every SDK and transport failure into a typed error, once for all methods."""
        try:
            yield
        except api_errors.GoogleAPICallError as exc:
            raise self._service_error(exc, key) from exc
        except DataCorruption as exc:
            raise IntegrityError(f"{self._where(key)}: checksum mismatch in transfer", key=key) from exc
        except auth_errors.RefreshError as exc:
            kind = Unavailable if getattr(exc, "retryable", False) else PermissionDenied
            message = f"access denied to bucket '{self.bucket}': the credentials were rejected"
            raise kind(f"{message} ({one_line(exc)})", key=key) from exc
        except auth_errors.TransportError as exc:
            raise Unavailable(f"cannot reach the token service: {one_line(exc)}", key=key) from exc
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise Unavailable(f"cannot reach {self._endpoint}: {_unreachable_reason(exc)}", key=key) from exc

    def _service_error(self, exc: api_errors.GoogleAPICallError, key: str | None) -> StorageError:
        status = int(exc.code or 0)
        reason = _reason(exc)
        request_id = _request_id(exc)
        kind = _error_kind(status, reason, exc.message or "")
        if kind is NotFound and (key is None or "specified bucket" in (exc.message or "").lower()):
            message = f"bucket '{self.bucket}' does not exist at {self._endpoint}"
        elif kind is NotFound:
            message = f"no such key: {key}"
        elif kind is PermissionDenied and status == 401:
            message = f"access denied to bucket '{self.bucket}': the credentials were rejected ({reason})"
        elif kind is PermissionDenied:
            message = f"access denied to {self._where(key)} ({reason})"
        else:
            message = f"{self._where(key)}: {one_line(exc.message or 'request failed')} ({status} {reason})"
        return kind(message, key=key, request_id=request_id)

    def _where(self, key: str | None) -> str:
        return f"{self.scheme}://{self.bucket}/{key}" if key else self.describe()


def _error_kind(status: int, reason: str, message: str) -> type[StorageError]:
    if status in (408, 429) or status >= 500 or reason in _RATE_LIMITED:
        return Unavailable
    if status in (401, 403):
        return PermissionDenied
    if status == 404:
        return NotFound
    if status == 412:
        return PreconditionFailed
    if status == 400 and _BAD_DIGEST.search(message):
        return IntegrityError
    return StorageError


def _reason(exc: api_errors.GoogleAPICallError) -> str:
    errors = exc.errors or []
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    return str(first.get("reason") or type(exc).__name__)


def _request_id(exc: api_errors.GoogleAPICallError) -> str | None:
    """GCS tags each answer with X-GUploader-UploadID, the id its support asks for."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    return headers.get("X-GUploader-UploadID") or headers.get("x-guploader-uploadid") or None


def _info(blob: Any) -> ObjectInfo:
    when = blob.updated or blob.time_created
    return ObjectInfo(
        blob.name,
        int(blob.size or 0),
        str(blob.generation),
        when.timestamp() if when else 0.0,
        blob.content_type,
        dict(blob.metadata or {}),
    )


def _generation(key: str, etag: str | None) -> int | None:
    """The generation an etag of ours stands for; an etag that is none cannot match any object."""
    if etag is None:
        return None
    if not etag.isdigit():
        raise PreconditionFailed(f"{key} cannot match etag {etag}: not a GCS generation", key=key)
    return int(etag)


def _check_user_key(key: str) -> None:
    if key.startswith(RESERVED):
        raise InvalidKey(f"{RESERVED} is reserved for objfs's multipart parts: {key!r}", key=key)


def _checked(key: str, upload_id: str) -> str:
    """Upload ids become object names, so only ids this backend could have made are accepted."""
    if not _UPLOAD_ID.fullmatch(upload_id):
        raise NotFound(f"no multipart upload of {key} with that id", key=key)
    return upload_id


def _upload_name(key: str, upload_id: str, leaf: str) -> str:
    return f"{UPLOADS}{key}/{upload_id}/{leaf}"


def _encryption_headers(key: bytes | None) -> dict[str, str]:
    if key is None:
        return {}
    return {
        "X-Goog-Encryption-Algorithm": "AES256",
        "X-Goog-Encryption-Key": base64.b64encode(key).decode(),
        "X-Goog-Encryption-Key-Sha256": base64.b64encode(hashlib.sha256(key).digest()).decode(),
    }


def _unreachable_reason(exc: BaseException) -> str:
    """Why no answer came, in words: urllib3 buries the socket error under its own wrappers (and
    its NewConnectionError is a ConnectTimeoutError by inheritance), so the whole chain is read."""
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and cause not in chain:
        chain.append(cause)
        nested = getattr(cause, "reason", None) or (cause.args[0] if cause.args else None)
        cause = nested if isinstance(nested, BaseException) else (cause.__cause__ or cause.__context__)
    reasons = (
        (ConnectionRefusedError, "connection refused"),
        (urllib3.exceptions.NameResolutionError, "host name not found"),
        (
            requests.exceptions.ReadTimeout | urllib3.exceptions.ReadTimeoutError,
            "no answer in time (read timed out)",
        ),
        (requests.exceptions.ConnectTimeout | urllib3.exceptions.ConnectTimeoutError, "connection timed out"),
    )
    for kind, words in reasons:
        if any(isinstance(link, kind) for link in chain):
            return words
    return f"connection failed ({one_line(exc)})"
