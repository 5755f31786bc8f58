"""Amazon S3 and S3-compatible services (MinIO, Ceph, moto) through one shared boto3 client.

Credentials come from `S3_ACCESS_KEY`/`S3_SECRET_KEY` (environment or a 0600 file), else from
boto3's standard chain (AWS_* variables, ~/.aws, instance role); never from a flag or a URL, and
no message ever contains one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as SdkConnectionError

from .base import (
    BadConfiguration,
    Capabilities,
    InvalidKey,
    ListPage,
    MultipartUpload,
    NotFound,
    ObjectInfo,
    Payload,
    PermissionDenied,
    Storage,
    StorageError,
    Unavailable,
    UploadedPart,
    absent_fails_if_match,
    one_line,
    payload_size,
    raised_from,
    unreachable_reason,
)
from .s3_family import (
    AWS_ERRORS_BY_CODE,
    AWS_REJECTED_CREDENTIALS,
    BodyReads,
    S3FamilyStorage,
    byte_range,
    server_time,
)
from .settings import (
    CA_BUNDLE,
    PROXY,
    SSE_KMS_KEY_ID,
    STORAGE_CLASS,
    SettingNames,
    Settings,
)

ADDRESSING_STYLES = ("auto", "path", "virtual")
SIGNATURE_VERSIONS = ("s3v4", "s3")
NO_CREDENTIALS = "no credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or configure a profile"


@dataclass(frozen=True)
class S3Connection:
    """How to reach and sign for an S3 service, and what every new object gets (encryption, class).

    Secrets stay out of `repr`, so a logged or printed connection shows none.
    """

    endpoint_url: str | None = None
    region: str | None = None
    addressing_style: str = "auto"
    signature_version: str | None = None
    profile: str | None = None
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    ca_bundle: str | None = None
    proxy: str | None = field(default=None, repr=False)  # may carry a password
    sse: str | None = None
    sse_kms_key_id: str | None = None
    sse_c_key: bytes | None = field(default=None, repr=False)
    storage_class: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, prefix: str, **overrides: Any) -> S3Connection:
        """Read `{prefix}_ENDPOINT`, `{prefix}_ACCESS_KEY`, ... as the seed names them for S3 and OCI."""
        access, secret = settings.get(f"{prefix}_ACCESS_KEY"), settings.get(f"{prefix}_SECRET_KEY")
        if (access is None) != (secret is None):
            raise BadConfiguration(f"{prefix}_ACCESS_KEY and {prefix}_SECRET_KEY must be set together")
        if settings.flag(f"{prefix}_USE_AWS_MANAGED_IAM"):
            access = secret = None  # the instance role, through boto3's chain
        values: dict[str, Any] = {
            "endpoint_url": settings.get(f"{prefix}_ENDPOINT"),
            "region": settings.get(f"{prefix}_REGION"),
            "addressing_style": settings.choice(f"{prefix}_ADDRESS_STYLE", ADDRESSING_STYLES, "auto"),
            "signature_version": _signature_version(settings.get(f"{prefix}_SIGNATURE_VERSION")),
            "profile": settings.get("AWS_PROFILE"),
            "access_key": access,
            "secret_key": secret,
            "ca_bundle": settings.file(CA_BUNDLE),
            "proxy": settings.get(PROXY),
            "sse": settings.sse(),
            "sse_kms_key_id": settings.get(SSE_KMS_KEY_ID),
            "sse_c_key": settings.sse_c_key(),
            "storage_class": settings.get(STORAGE_CLASS),
        }
        return cls(**{**values, **overrides})

    def session(self) -> Any:
        return boto3.session.Session(
            profile_name=self.profile,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    def config(self, attempts: int, **timeouts: float) -> Config:
        """Checksums only when S3 demands them, since S3-compatible services often reject them."""
        return Config(
            max_pool_connections=32,
            retries={"mode": "standard", "max_attempts": attempts},
            s3={"addressing_style": self.addressing_style},
            signature_version=self.signature_version,
            proxies={"http": self.proxy, "https": self.proxy} if self.proxy else None,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            **timeouts,
        )

    def write_arguments(self) -> dict[str, Any]:
        """What PUT, CreateMultipartUpload and CopyObject add for encryption and storage class."""
        arguments: dict[str, Any] = self.read_arguments()
        if self.sse == "sse-s3":
            arguments["ServerSideEncryption"] = "AES256"
        elif self.sse == "sse-kms":
            arguments["ServerSideEncryption"] = "aws:kms"
            if self.sse_kms_key_id:
                arguments["SSEKMSKeyId"] = self.sse_kms_key_id
        if self.storage_class:
            arguments["StorageClass"] = self.storage_class
        return arguments

    def read_arguments(self) -> dict[str, Any]:
        """With SSE-C every request that touches the bytes must present the key again."""
        if self.sse_c_key is None:
            return {}
        return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": self.sse_c_key}

    def copy_source_arguments(self) -> dict[str, Any]:
        return {f"CopySource{name}": value for name, value in self.read_arguments().items()}


def _signature_version(text: str | None) -> str | None:
    """`v4`/`s3v4` or `v2`/`s3`, as deployments spell them; None lets botocore choose (SigV4)."""
    if text is None:
        return None
    version = {"v4": "s3v4", "v2": "s3"}.get(text.lower(), text.lower())
    if version not in SIGNATURE_VERSIONS:
        raise BadConfiguration("S3_SIGNATURE_VERSION must be v4 (s3v4) or v2 (s3)")
    return version


class S3Storage(BodyReads, S3FamilyStorage):
    """One bucket; every method is one (or, for copy and complete, two) S3 requests, except a copy
    of a source over `copy_limit`, which takes one request per part."""

    scheme = "s3"
    names = SettingNames(bucket="S3_BUCKET_NAME", endpoint="S3_ENDPOINT", region="S3_REGION")
    flag_names = {"addressing_style": "S3_ADDRESS_STYLE", "profile": "AWS_PROFILE"}
    capabilities = Capabilities(
        copy=True,
        multipart=True,
        conditional_write=True,
        metadata_in_listing=False,
        max_metadata_bytes=2048,
        etag_is_md5=True,
    )
    errors_by_code = AWS_ERRORS_BY_CODE
    rejected_credentials = AWS_REJECTED_CREDENTIALS
    archived = "is archived (Glacier-class)"

    def __init__(self, bucket: str, connection: S3Connection | None = None) -> None:
        self.bucket = bucket
        self._connection = connection or S3Connection()
        try:
            self._session = self._connection.session()
            # one attempt: objfs.storage.retrying retries every backend the same way; the
            # timeouts bound how long a request to a hung server can hold a worker thread
            self._client = self._make_client(attempts=1, connect_timeout=10, read_timeout=60)
        except (BotoCoreError, ValueError) as exc:
            raise BadConfiguration(f"cannot configure {self.describe()}: {one_line(exc)}") from exc
        self._endpoint = self._client.meta.endpoint_url
        self._writes = self._connection.write_arguments()
        self._reads = self._connection.read_arguments()

    @classmethod
    def from_settings(cls, settings: Settings) -> Storage:
        bucket = settings.require(cls.names.bucket or "", f"the bucket: {cls.scheme}://bucket/prefix")
        return cls(bucket, cls.connection_from(settings))

    @classmethod
    def connection_from(cls, settings: Settings) -> S3Connection:
        """The client settings of S3 proper; S3-compatible services adjust them in subclasses."""
        return S3Connection.from_settings(settings, "S3")

    def check(self) -> None:
        """List at most one key with a client that never retries, so a wrong endpoint fails in seconds.

        A listing rather than head_bucket (both need s3:ListBucket): HEAD answers carry no error code,
        and the code is what tells rejected credentials from a bucket policy that denies access.
        """
        probe = self._make_client(attempts=1, connect_timeout=5, read_timeout=10)
        try:
            with self._calls():
                probe.list_objects_v2(Bucket=self.bucket, MaxKeys=1)
        finally:
            probe.close()

    def stat(self, key: str) -> ObjectInfo:
        with self._calls(key):
            head = self._client.head_object(Bucket=self.bucket, Key=key, **self._reads)
        return ObjectInfo(
            key,
            head["ContentLength"],
            _etag(head),
            head["LastModified"].timestamp(),
            head.get("ContentType"),
            head.get("Metadata", {}),
        )

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
        size = payload_size(data)
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": data, **self._writes}
        args.update(_attributes(metadata, content_type))
        args.update(_conditions(if_match, if_none_match))
        if md5 is not None:
            args["ContentMD5"] = md5
        with absent_fails_if_match(key, if_match), self._calls(key):
            response = self._client.put_object(**args)
        mtime = _server_time(response)
        return ObjectInfo(key, size, _etag(response), mtime, content_type, dict(metadata or {}))

    def list(
        self,
        prefix: str = "",
        delimiter: str | None = "/",
        token: str | None = None,
        limit: int = 1000,
    ) -> ListPage:
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": limit}
        if delimiter:
            args["Delimiter"] = delimiter
        if token:
            args["ContinuationToken"] = token
        with self._calls():
            response = self._client.list_objects_v2(**args)
        return ListPage(
            objects=[
                ObjectInfo(item["Key"], item["Size"], _etag(item), item["LastModified"].timestamp())
                for item in response.get("Contents", [])
            ],
            prefixes=[item["Prefix"] for item in response.get("CommonPrefixes", [])],
            next_token=response.get("NextContinuationToken") if response.get("IsTruncated") else None,
        )

    def _copy_object(
        self,
        source: ObjectInfo,
        dst: str,
        metadata: dict[str, str] | None,
        content_type: str | None,
        *,
        replace: bool,
    ) -> ObjectInfo:
        """REPLACE must restate the content type, or S3 drops it."""
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": dst,
            "CopySource": {"Bucket": self.bucket, "Key": source.key},
            "MetadataDirective": "REPLACE" if replace else "COPY",
            **self._writes,
            **self._connection.copy_source_arguments(),
        }
        if replace:
            args.update(_attributes(metadata, content_type))
        with self._calls(dst):
            result = self._client.copy_object(**args)["CopyObjectResult"]
        mtime = result["LastModified"].timestamp()
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
        with self._calls(key):
            response = self._client.upload_part(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                ContentMD5=md5,
                **self._reads,
            )
        return UploadedPart(number, _etag(response))

    def complete_multipart(self, key: str, upload_id: str, parts: list[UploadedPart]) -> ObjectInfo:
        """Stat after completing: the answer carries neither the size nor the metadata."""
        self._complete(key, upload_id, parts)
        return self.stat(key)

    def complete_multipart_if(
        self,
        key: str,
        upload_id: str,
        parts: list[UploadedPart],
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> ObjectInfo:
        """S3 checks If-Match and If-None-Match in the completion itself, where no other writer
        can slip in; the stat first serves servers that ignore them (moto ignores If-Match)."""
        self.check_conditions(key, if_match, if_none_match)
        with absent_fails_if_match(key, if_match):
            self._complete(key, upload_id, parts, **_conditions(if_match, if_none_match))
        return self.stat(key)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        with contextlib.suppress(NotFound), self._calls(key):
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def list_multipart(self, prefix: str = "") -> list[MultipartUpload]:
        with self._calls():
            pages = self._client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            return [
                MultipartUpload(item["Key"], item["UploadId"], item["Initiated"].timestamp())
                for page in pages
                for item in page.get("Uploads", [])
            ]

    def url(self, key: str, expires: int = 3600) -> str:
        with self._calls(key):
            return self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires
            )

    def close(self) -> None:
        self._client.close()

    # -- helpers -------------------------------------------------------------------------

    def _complete(
        self, key: str, upload_id: str, parts: list[UploadedPart], **conditions: str
    ) -> dict[str, Any]:
        listed = [{"PartNumber": part.number, "ETag": f'"{part.etag}"'} for part in parts]
        with self._calls(key):
            return self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": listed},
                **conditions,
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
        response = self._complete(dst, upload_id, parts)
        mtime = _server_time(response)
        return ObjectInfo(dst, source.size, _etag(response), mtime, content_type, dict(metadata or {}))

    def _copy_part(
        self, source: ObjectInfo, dst: str, upload_id: str, number: int, offset: int, length: int
    ) -> UploadedPart:
        """If-Match, so a source overwritten mid-copy fails the copy instead of completing as a mix
        of its old and new bytes. The client is thread-safe, so parts run in parallel."""
        with self._calls(dst):
            response = self._client.upload_part_copy(
                Bucket=self.bucket,
                Key=dst,
                UploadId=upload_id,
                PartNumber=number,
                CopySource={"Bucket": self.bucket, "Key": source.key},
                CopySourceRange=byte_range(offset, length),
                CopySourceIfMatch=f'"{source.etag}"',
                **self._reads,
                **self._connection.copy_source_arguments(),
            )
        return UploadedPart(number, _etag(response["CopyPartResult"]))

    def _make_client(self, attempts: int, **timeouts: float) -> Any:
        return self._session.client(
            "s3",
            endpoint_url=self._connection.endpoint_url,
            verify=self._connection.ca_bundle,
            config=self._connection.config(attempts, **timeouts),
        )

    def _body(self, key: str, offset: int, length: int | None) -> Any:
        """GET a byte range; None when it starts past the end, which S3 reports as InvalidRange."""
        ranged = {} if offset == 0 and length is None else {"Range": byte_range(offset, length)}
        try:
            return self._client.get_object(Bucket=self.bucket, Key=key, **ranged, **self._reads)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return None
            raise

    @contextlib.contextmanager
    def _calls(self, key: str | None = None) -> Iterator[None]:
        """Turn every SDK failure into a typed error, once for all methods, so no boto type escapes."""
        try:
            yield
        except ClientError as exc:
            raise self._service_error(exc, key) from exc
        except BotoCoreError as exc:
            raise self._sdk_error(exc, key) from exc
        except OSError as exc:
            raise Unavailable(f"{self._where(key)}: {exc.strerror or exc}", key=key) from exc

    def _service_error(self, exc: ClientError, key: str | None) -> StorageError:
        error = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        status = int(meta.get("HTTPStatusCode") or 0)
        request_id = meta.get("RequestId") or meta.get("HTTPHeaders", {}).get("x-amz-request-id")
        return self._answer_error(error.get("Code"), status, key, error.get("Message"), request_id)

    def _sdk_error(self, exc: BotoCoreError, key: str | None) -> StorageError:
        if isinstance(exc, NoCredentialsError):
            return PermissionDenied(NO_CREDENTIALS, key=key)
        if isinstance(exc, PartialCredentialsError | CredentialRetrievalError):
            return PermissionDenied(f"unusable credentials: {one_line(exc)}", key=key)
        if isinstance(exc, ParamValidationError):
            return InvalidKey(f"{self._where(key)}: {one_line(exc)}", key=key)
        reason = _unreachable_reason(exc)
        if reason:
            return Unavailable(f"cannot reach {self._endpoint}: {reason}", key=key)
        return Unavailable(f"{self._where(key)}: {one_line(exc)}", key=key)


def _conditions(if_match: str | None, if_none_match: bool) -> dict[str, str]:
    """S3's request conditions: over this etag only, or only where no object is."""
    conditions = {"IfMatch": f'"{if_match}"'} if if_match is not None else {}
    return conditions | ({"IfNoneMatch": "*"} if if_none_match else {})


def _attributes(metadata: dict[str, str] | None, content_type: str | None) -> dict[str, Any]:
    """Metadata and content type as put, copy (REPLACE) and create-multipart all spell them."""
    attributes: dict[str, Any] = {"Metadata": dict(metadata or {})}
    if content_type:
        attributes["ContentType"] = content_type
    return attributes


def _etag(answer: dict[str, Any]) -> str:
    return answer["ETag"].strip('"')


def _server_time(response: dict[str, Any]) -> float:
    return server_time(response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date"))


def _unreachable_reason(exc: BotoCoreError) -> str | None:
    """Why no answer came, in words, or None when the failure happened after the service answered."""
    if isinstance(exc, ConnectTimeoutError):
        return "connection timed out"
    if isinstance(exc, ReadTimeoutError):
        return "no answer in time (read timed out)"
    if not isinstance(exc, SdkConnectionError | HTTPClientError):
        return None
    return unreachable_reason(exc, _next_cause)


def _next_cause(exc: BaseException) -> BaseException | None:
    """botocore keeps the error of a failed connection in the exception's `error` argument."""
    if isinstance(exc, EndpointConnectionError):
        return exc.kwargs.get("error")
    return raised_from(exc)
