"""Tencent Cloud Object Storage (COS) through cos-python-sdk-v5 (`pip install 'objfs[cos]'`).

Settings, as the seed's deployments name them:
- `TENCENT_COS_BUCKET_NAME`: the bucket with its APPID, `<name>-<appid>` (`examplebucket-1250000000`);
- `TENCENT_COS_REGION`: e.g. `ap-guangzhou`; the service host is `<bucket>.cos.<region>.myqcloud.com`;
- `TENCENT_COS_SECRET_ID` / `TENCENT_COS_SECRET_KEY`: the API key (environment or a 0600 file);
- `TENCENT_COS_SCHEME`: `https` (the default) or `http`;
- `TENCENT_COS_ENDPOINT` (new, optional): where requests go instead of the region's host. A host
  name is the service endpoint the bucket is put in front of (`cos.accelerate.myqcloud.com`
  gives `<bucket>.cos.accelerate.myqcloud.com`), or the bucket's own domain when it starts with
  `<bucket>.`; an IP address, `http://IP:PORT`, is a private or test server that is sent the
  requests while the Host header stays `<bucket>.cos.<region>.myqcloud.com`. A scheme in it wins
  over `TENCENT_COS_SCHEME`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_exception import CosClientError, CosServiceError
from requests.structures import CaseInsensitiveDict

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
    Storage,
    StorageError,
    Unavailable,
    UploadedPart,
    one_line,
    payload_size,
    unreachable_reason,
)
from .s3_family import AWS_ERRORS_BY_CODE, AWS_REJECTED_CREDENTIALS, S3FamilyStorage, byte_range, server_time
from .settings import CA_BUNDLE, PROXY, SSE_KMS_KEY_ID, STORAGE_CLASS, SettingNames, Settings

BUCKET = "TENCENT_COS_BUCKET_NAME"
REGION = "TENCENT_COS_REGION"
ENDPOINT = "TENCENT_COS_ENDPOINT"
SECRET_ID = "TENCENT_COS_SECRET_ID"
SECRET_KEY = "TENCENT_COS_SECRET_KEY"
SCHEME = "TENCENT_COS_SCHEME"
BUCKET_FORM = re.compile(r"[a-z0-9][a-z0-9-]*-[0-9]+")
META = "x-cos-meta-"
POOL_SIZE = 32
"""Connections kept per host; at least the worker threads that call one backend at once."""

_ERRORS = {
    **AWS_ERRORS_BY_CODE,
    "NoSuchResource": NotFound,  # the SDK's own code for a HEAD answered 404
    "KeyTooLong": InvalidKey,
    "InternalError": Unavailable,  # also sent with 200 when a copy fails after it started
    "ServiceUnavailable": Unavailable,
}


@dataclass(frozen=True)
class CosConnection:
    """Where the requests go and how they are signed; secrets stay out of `repr`."""

    region: str | None
    secret_id: str = field(repr=False)
    secret_key: str = field(repr=False)
    scheme: str = "https"
    endpoint: str | None = None
    """A service endpoint the bucket name is put in front of."""
    domain: str | None = None
    """The bucket's own host name, used as it is."""
    ip: str | None = None
    port: int | None = None
    proxy: str | None = None
    ca_bundle: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, bucket: str) -> CosConnection:
        secret_id, secret_key = settings.get(SECRET_ID), settings.get(SECRET_KEY)
        if secret_id is None or secret_key is None:
            raise BadConfiguration(f"{SECRET_ID} and {SECRET_KEY} must both be set: the COS API key")
        scheme = settings.choice(SCHEME, ("https", "http"), "https")
        place: dict[str, Any] = {}
        if settings.get(ENDPOINT):
            scheme, place = _endpoint(settings[ENDPOINT], bucket, scheme)
        region = settings.get(REGION)
        if region is None and not place.get("endpoint"):  # the Host header and copy sources name it
            raise BadConfiguration(f"{REGION} is not set: the bucket's region, e.g. ap-guangzhou")
        return cls(
            region,
            secret_id,
            secret_key,
            scheme,
            proxy=settings.get(PROXY),
            ca_bundle=settings.get(CA_BUNDLE),
            **place,
        )

    def config(self, timeout: tuple[float, float]) -> CosConfig:
        return CosConfig(
            Region=self.region,
            SecretId=self.secret_id,
            SecretKey=self.secret_key,
            Scheme=self.scheme,
            Endpoint=self.endpoint,
            Domain=self.domain,
            IP=self.ip,
            Port=self.port,
            Timeout=timeout,
            Proxies={"http": self.proxy, "https": self.proxy} if self.proxy else None,
            VerifySSL=self.ca_bundle,
        )

    def describe_endpoint(self, bucket: str) -> str:
        """Where the requests go, for messages: the address actually dialled."""
        if self.ip:
            return f"{self.scheme}://{self.ip}" + (f":{self.port}" if self.port else "")
        host = self.domain or f"{bucket}.{self.endpoint or f'cos.{self.region}.myqcloud.com'}"
        return f"{self.scheme}://{host}"

    def copy_source(self, bucket: str, key: str) -> dict[str, str]:
        """The copy source names the bucket's service host, as the SDK spells it into x-cos-copy-source."""
        where = {"Endpoint": self.endpoint} if self.endpoint else {"Region": self.region or ""}
        return {"Bucket": bucket, "Key": key, **where}


def _endpoint(value: str, bucket: str, scheme: str) -> tuple[str, dict[str, Any]]:
    """`http://IP:PORT`, a bucket domain or a service endpoint, as CosConfig takes each."""
    parts = urlsplit(value if "://" in value else f"//{value}")
    if parts.scheme not in ("", "http", "https") or not parts.hostname or parts.path.strip("/"):
        raise BadConfiguration(f"{ENDPOINT} must be a host name, or http(s)://IP:PORT for a private server")
    scheme = parts.scheme or scheme
    try:
        ipaddress.ip_address(parts.hostname)
    except ValueError:
        host = parts.netloc
        return scheme, {"domain": host} if host.startswith(f"{bucket}.") else {"endpoint": host}
    return scheme, {"ip": parts.hostname, "port": parts.port}


@dataclass(frozen=True)
class CosWrites:
    """What every new object gets (encryption, storage class), and what reading it back needs."""

    sse: str | None = None
    sse_kms_key_id: str | None = None
    sse_c_key: bytes | None = field(default=None, repr=False)
    storage_class: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> CosWrites:
        return cls(
            settings.sse(), settings.get(SSE_KMS_KEY_ID), settings.sse_c_key(), settings.get(STORAGE_CLASS)
        )

    def write_arguments(self) -> dict[str, str]:
        """PUT, initiate-multipart and copy: COS spells SSE-KMS `cos/kms`."""
        arguments = self.read_arguments()
        if self.sse == "sse-s3":
            arguments["ServerSideEncryption"] = "AES256"
        elif self.sse == "sse-kms":
            arguments["ServerSideEncryption"] = "cos/kms"
            if self.sse_kms_key_id:
                arguments["SSEKMSKeyId"] = self.sse_kms_key_id
        if self.storage_class:
            arguments["StorageClass"] = self.storage_class
        return arguments

    def read_arguments(self) -> dict[str, str]:
        """With SSE-C every request that touches the bytes presents the key and its MD5 again."""
        if self.sse_c_key is None:
            return {}
        return {
            "SSECustomerAlgorithm": "AES256",
            "SSECustomerKey": base64.b64encode(self.sse_c_key).decode(),
            "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(self.sse_c_key).digest()).decode(),
        }

    def copy_source_arguments(self) -> dict[str, str]:
        return {f"CopySource{name}": value for name, value in self.read_arguments().items()}


class CosStorage(S3FamilyStorage):
    """One bucket; each method is one COS request, except copy (a stat first) and complete
    (a stat after), and a copy over `copy_limit`, which takes one request per part.

    Writes check `if_match`/`if_none_match` with a stat first: COS documents no conditional PUT
    (no If-Match/If-None-Match, no forbid-overwrite header), so a racing writer can still win.
    """

    scheme = "cos"
    names = SettingNames(bucket=BUCKET, endpoint=ENDPOINT, region=REGION)
    capabilities = Capabilities(
        copy=True,
        multipart=True,
        conditional_write=False,
        metadata_in_listing=False,
        min_part_size=5 * 1024 * 1024,  # COS takes 1 MB parts; 5 MiB keeps S3-compatible servers happy
        max_part_count=10_000,
        max_metadata_bytes=2048,
        etag_is_md5=True,
    )
    errors_by_code = _ERRORS
    rejected_credentials = AWS_REJECTED_CREDENTIALS
    archived = "is archived (ARCHIVE/DEEP_ARCHIVE)"

    def __init__(self, bucket: str, connection: CosConnection, writes: CosWrites | None = None) -> None:
        if not BUCKET_FORM.fullmatch(bucket):
            raise BadConfiguration(f"{BUCKET} must be <name>-<appid>, e.g. examplebucket-1250000000")
        self.bucket = bucket
        self._connection = connection
        self._endpoint = connection.describe_endpoint(bucket)
        writes = writes or CosWrites()
        self._writes = writes.write_arguments()
        self._reads = writes.read_arguments()
        self._copy_reads = writes.copy_source_arguments()
        self._session = requests.Session()  # ours, not the SDK's process-wide one, so close() can end it
        adapter = requests.adapters.HTTPAdapter(pool_connections=POOL_SIZE, pool_maxsize=POOL_SIZE)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        # one attempt: objfs.storage.retrying retries every backend the same way
        self._client = self._make_client(timeout=(10, 60))

    @classmethod
    def from_settings(cls, settings: Settings) -> Storage:
        bucket = settings.require(BUCKET, "the bucket, <name>-<appid>: cos://bucket-appid/prefix")
        return cls(bucket, CosConnection.from_settings(settings, bucket), CosWrites.from_settings(settings))

    def check(self) -> None:
        """List at most one key with short timeouts: a listing's error body tells a missing bucket
        from rejected credentials, where a HEAD of the bucket answers with a status only."""
        probe = self._make_client(timeout=(3, 5))
        with self._calls():
            probe.list_objects(Bucket=self.bucket, MaxKeys=1)

    def stat(self, key: str) -> ObjectInfo:
        with self._calls(key):
            head = CaseInsensitiveDict(self._client.head_object(Bucket=self.bucket, Key=key, **self._reads))
        return ObjectInfo(
            key,
            int(head["Content-Length"]),
            _etag(head),
            parsedate_to_datetime(head["Last-Modified"]).timestamp(),
            head.get("Content-Type"),
            {
                name[len(META) :].lower(): value
                for name, value in head.items()
                if name.lower().startswith(META)
            },
        )

    def read(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        if length == 0:
            self.stat(key)  # no empty range exists, but a missing key must still be NotFound
            return b""
        return b"".join(self._chunks(key, offset, length))

    def read_stream(self, key: str, offset: int = 0) -> Iterator[bytes]:
        return self._chunks(key, offset, None)

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
        self.check_conditions(key, if_match, if_none_match)
        size = payload_size(data)
        args: dict[str, Any] = {**_attributes(metadata, content_type), **self._writes}
        if md5 is not None:
            args["ContentMD5"] = md5
        if not isinstance(data, bytes | bytearray | memoryview):
            data.seek(0)
        with self._calls(key):
            response = CaseInsensitiveDict(
                self._client.put_object(Bucket=self.bucket, Key=key, Body=data, **args)
            )
        return ObjectInfo(
            key, size, _etag(response), _server_time(response), content_type, dict(metadata or {})
        )

    def list(
        self,
        prefix: str = "",
        delimiter: str | None = "/",
        token: str | None = None,
        limit: int = 1000,
    ) -> ListPage:
        """COS lists with V1 markers: the token is the marker, the last name of the page before."""
        with self._calls():
            response = self._client.list_objects(
                Bucket=self.bucket,
                Prefix=prefix,
                Delimiter=delimiter or "",
                Marker=token or "",
                MaxKeys=limit,
            )
        objects = [
            ObjectInfo(item["Key"], int(item["Size"]), _etag(item), _iso_time(item["LastModified"]))
            for item in response.get("Contents", [])
        ]
        prefixes = [item["Prefix"] for item in response.get("CommonPrefixes", [])]
        next_token = None
        if response.get("IsTruncated") == "true":
            next_token = response.get("NextMarker") or max([o.key for o in objects] + prefixes)
        return ListPage(objects, prefixes, next_token)

    def _copy_object(
        self,
        source: ObjectInfo,
        dst: str,
        metadata: dict[str, str] | None,
        content_type: str | None,
        *,
        replace: bool,
    ) -> ObjectInfo:
        """`Replaced` must restate the content type, or COS drops it."""
        args: dict[str, Any] = {**self._writes, **self._copy_reads}
        if replace:
            args.update(_attributes(metadata, content_type))
        with self._calls(dst):
            result = self._client.copy_object(
                Bucket=self.bucket,
                Key=dst,
                CopySource=self._connection.copy_source(self.bucket, source.key),
                CopyStatus="Replaced" if replace else "Copy",
                **args,
            )
        mtime = _iso_time(result["LastModified"])
        return ObjectInfo(dst, source.size, _etag(result), mtime, content_type, dict(metadata or {}))

    def delete(self, key: str) -> None:
        with self._calls(key):
            self._client.delete_object(Bucket=self.bucket, Key=key)

    def create_multipart(
        self, key: str, *, metadata: dict[str, str] | None = None, content_type: str | None = None
    ) -> str:
        with self._calls(key):
            response = self._client.create_multipart_upload(
                Bucket=self.bucket, Key=key, **_attributes(metadata, content_type), **self._writes
            )
        return response["UploadId"]

    def upload_part(self, key: str, upload_id: str, number: int, data: Payload, md5: str) -> UploadedPart:
        if not isinstance(data, bytes | bytearray | memoryview):
            data.seek(0)
        with self._calls(key):
            response = CaseInsensitiveDict(
                self._client.upload_part(
                    Bucket=self.bucket,
                    Key=key,
                    Body=data,
                    PartNumber=number,
                    UploadId=upload_id,
                    ContentMD5=md5,
                    **self._reads,
                )
            )
        return UploadedPart(number, _etag(response))

    def complete_multipart(self, key: str, upload_id: str, parts: list[UploadedPart]) -> ObjectInfo:
        """Stat after completing: the answer carries neither the size nor the metadata."""
        self._complete(key, upload_id, parts)
        return self.stat(key)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        with contextlib.suppress(NotFound), self._calls(key):
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def list_multipart(self, prefix: str = "") -> list[MultipartUpload]:
        uploads: list[MultipartUpload] = []
        markers = {"KeyMarker": "", "UploadIdMarker": ""}
        while True:
            with self._calls():
                page = self._client.list_multipart_uploads(Bucket=self.bucket, Prefix=prefix, **markers)
            uploads += [
                MultipartUpload(item["Key"], item["UploadId"], _iso_time(item["Initiated"]))
                for item in page.get("Upload", [])
            ]
            if page.get("IsTruncated") != "true":
                return uploads
            markers = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}

    def url(self, key: str, expires: int = 3600) -> str:
        """A presigned GET. Through an IP endpoint the bucket cannot be in the host name, so the
        URL is path-style (`http://IP:PORT/<bucket>/<key>`), the form that reaches a bare address."""
        path = f"{self.bucket}/{key}" if self._connection.ip else key
        with self._calls(key):
            return self._client.get_presigned_download_url(Bucket=self.bucket, Key=path, Expired=expires)

    def close(self) -> None:
        self._session.close()

    # -- helpers -------------------------------------------------------------------------

    def _make_client(self, timeout: tuple[float, float]) -> CosS3Client:
        try:
            config = self._connection.config(timeout)
        except CosClientError as exc:
            raise BadConfiguration(f"cannot configure {self.describe()}: {one_line(exc)}") from exc
        return CosS3Client(config, retry=0, session=self._session)

    def _chunks(self, key: str, offset: int, length: int | None) -> Iterator[bytes]:
        """GET a byte range as it arrives, undecoded; nothing when it starts past the end (416)."""
        ranged = {} if offset == 0 and length is None else {"Range": byte_range(offset, length)}
        with self._calls(key):
            try:
                body = self._client.get_object(Bucket=self.bucket, Key=key, **ranged, **self._reads)["Body"]
            except CosServiceError as exc:
                if _fields(exc).get("code") == "InvalidRange":
                    return
                raise
            raw = body.get_raw_stream()
            with contextlib.closing(raw):
                yield from raw.stream(STREAM_CHUNK, decode_content=False)

    def _complete(self, key: str, upload_id: str, parts: list[UploadedPart]) -> dict[str, Any]:
        listed = [{"PartNumber": part.number, "ETag": f'"{part.etag}"'} for part in parts]
        with self._calls(key):
            return self._client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Part": listed}
            )

    def _complete_copy(
        self,
        source: ObjectInfo,
        dst: str,
        upload_id: str,
        parts: list[UploadedPart],
        metadata: dict[str, str] | None,
        content_type: str | None,
    ) -> ObjectInfo:
        """No stat: the answer carries the etag and the date, and the rest is known here."""
        response = CaseInsensitiveDict(self._complete(dst, upload_id, parts))
        return ObjectInfo(
            dst, source.size, _etag(response), _server_time(response), content_type, metadata or {}
        )

    def _copy_part(
        self, source: ObjectInfo, dst: str, upload_id: str, number: int, offset: int, length: int
    ) -> UploadedPart:
        """If-Match, so a source overwritten mid-copy fails the copy instead of completing as a
        mix of its old and new bytes."""
        with self._calls(dst):
            response = self._client.upload_part_copy(
                Bucket=self.bucket,
                Key=dst,
                PartNumber=number,
                UploadId=upload_id,
                CopySource=self._connection.copy_source(self.bucket, source.key),
                CopySourceRange=byte_range(offset, length),
                CopySourceIfMatch=f'"{source.etag}"',
                **self._reads,
                **self._copy_reads,
            )
        return UploadedPart(number, _etag(response))

    @contextlib.contextmanager
    def _calls(self, key: str | None = None) -> Iterator[None]:
        """Turn every SDK failure into a typed error, once for all methods, so no SDK type escapes."""
        try:
            yield
        except CosServiceError as exc:
            raise self._service_error(exc, key) from exc
        except CosClientError as exc:
            raise self._client_error(exc, key) from exc
        except OSError as exc:  # a body that breaks while it streams
            raise Unavailable(f"{self._where(key)}: {one_line(exc)}", key=key) from exc

    def _service_error(self, exc: CosServiceError, key: str | None) -> StorageError:
        fields = _fields(exc)
        request_id = fields.get("requestid") or fields.get("x-cos-request-id")
        status = int(exc.get_status_code() or 0)
        return self._answer_error(fields.get("code"), status, key, fields.get("message"), request_id)

    def _client_error(self, exc: CosClientError, key: str | None) -> StorageError:
        """A request that never got an answer is Unavailable; anything else the SDK refused to send."""
        reason = _unreachable_reason(exc)
        if reason is not None:
            return Unavailable(f"cannot reach {self._endpoint}: {reason}", key=key)
        kind = InvalidKey if key is not None else BadConfiguration
        return kind(f"{self._where(key)}: {one_line(exc)}", key=key)


def _fields(exc: CosServiceError) -> Mapping[str, str]:
    """The error's parsed body, or the answer's headers when it had none (a HEAD); else nothing."""
    digest = exc.get_digest_msg()
    return digest if isinstance(digest, Mapping) else {}


def _unreachable_reason(exc: CosClientError) -> str | None:
    """Why no answer came, from the requests error the SDK raised this one while handling."""
    cause: BaseException | None = exc.__cause__ or exc.__context__
    if not isinstance(cause, requests.RequestException):
        return None
    if isinstance(cause, requests.ConnectTimeout):
        return "connection timed out"
    if isinstance(cause, requests.Timeout):
        return "no answer in time (read timed out)"
    return unreachable_reason(exc)


def _attributes(metadata: dict[str, str] | None, content_type: str | None) -> dict[str, Any]:
    """Metadata and content type as put, copy (`Replaced`) and initiate-multipart all spell them."""
    attributes: dict[str, Any] = {
        "Metadata": {META + name: value for name, value in (metadata or {}).items()}
    }
    if content_type:
        attributes["ContentType"] = content_type
    return attributes


def _etag(answer: Mapping[str, str]) -> str:
    return answer["ETag"].strip('"')


def _iso_time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _server_time(response: Mapping[str, str]) -> float:
    return server_time(response.get("Date"))
