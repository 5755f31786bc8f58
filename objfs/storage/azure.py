"""Azure Blob Storage (and Azurite) through azure-storage-blob: one container per mount.

Credentials follow `AZURE_BLOB_AUTH_TYPE`: an account key (the default), a SAS token, a service
principal or a managed identity (the last two through azure-identity, over HTTPS only). No
message ever contains a key, a secret or a token.

Multipart uploads are block blobs, since Azure has no upload object of its own:

- `create_multipart` makes an upload id, `<8 hex digits of the start time><8 random hex digits>`,
  and sends nothing: the metadata and content type are kept in this process, keyed by the id,
  and committed with the block list. Azure cannot attach metadata to uncommitted blocks, so an
  upload completes only in the process that started it; after a crash the filesystem aborts the
  ids it journalled, and `abort_multipart` needs nothing but the key and the id.
- Part n is the block `objfs-<upload id>-<n, 5 digits>` (base64), staged with the part's
  Content-MD5, which Azure checks. Every objfs block id has the same length, as Azure requires
  of the blocks of one blob. The part's etag is the hex MD5 that Azure verified.
- `complete_multipart` commits the listed blocks with the upload's metadata, content type,
  access tier and encryption; Azure drops every other uncommitted block of the blob then, so two
  uploads racing to one key cannot both complete (the loser's commit fails as an IntegrityError).
- `list_multipart` finds blobs that exist only as uncommitted blocks (a listing with
  `uncommittedblobs` less the committed listing) and reads their block ids. An upload over a
  blob that already exists is not listed: Azure's listing does not show uncommitted blocks of a
  committed blob, and they are dropped by the blob's next commit or after seven days by Azure.
- `abort_multipart` deletes the blob when it exists only as this upload's uncommitted blocks.
  When it is committed, or other uploads' blocks share it, nothing is deleted (that would lose
  data) and the blocks are left to the next commit or to Azure's seven-day collection. Azure
  (and Azurite) ignore conditions on deleting a blob, so a commit landing between the check and
  the delete could be lost; the filesystem never commits and aborts one key at the same time.

User metadata names must be C# identifiers on Azure, so names are encoded reversibly (see
`encode_name`); values go as they are.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import re
import secrets
import ssl
import string
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from azure.core import MatchConditions
from azure.core.credentials import AzureNamedKeyCredential, TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    IncompleteReadError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.identity import ClientSecretCredential, ManagedIdentityCredential
from azure.storage.blob import (
    BlobBlock,
    BlobClient,
    BlobPrefix,
    BlobProperties,
    BlobSasPermissions,
    BlobServiceClient,
    ContentSettings,
    CustomerProvidedEncryptionKey,
    StandardBlobTier,
    generate_blob_sas,
)

from .base import (
    Archived,
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
    absent_fails_if_match,
    payload_size,
    raised_from,
    unreachable_reason,
    verify_md5,
)
from .settings import CA_BUNDLE, PROXY, SSE_KMS_KEY_ID, STORAGE_CLASS, SettingNames, Settings

ACCOUNT_NAME = "AZURE_BLOB_ACCOUNT_NAME"
ACCOUNT_KEY = "AZURE_BLOB_ACCOUNT_KEY"
CONTAINER_NAME = "AZURE_BLOB_CONTAINER_NAME"
ACCOUNT_URL = "AZURE_BLOB_ACCOUNT_URL"
AUTH_TYPE = "AZURE_BLOB_AUTH_TYPE"
CLIENT_ID = "AZURE_BLOB_CLIENT_ID"
CLIENT_SECRET = "AZURE_BLOB_CLIENT_SECRET"
TENANT_ID = "AZURE_BLOB_TENANT_ID"
SAS_TOKEN = "AZURE_BLOB_SAS_TOKEN"
AUTH_TYPES = ("account_key", "sas_token", "service_principal", "managed_identity")

TIERS = {
    tier.value.lower(): tier
    for tier in (StandardBlobTier.HOT, StandardBlobTier.COOL, StandardBlobTier.COLD, StandardBlobTier.ARCHIVE)
}
CONTAINER_RULE = re.compile(r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]|\$root|\$web|\$logs")
"""Azure's container names: 3-63 lowercase letters, digits and single hyphens (or a system name)."""

CONNECT_TIMEOUT, READ_TIMEOUT = 10, 60
PROBE_CONNECT_TIMEOUT, PROBE_READ_TIMEOUT = 4, 10
POOL_SIZE = 32
"""Connections kept per host: the filesystem runs many worker threads on one client."""
SINGLE_PUT_SIZE = 64 * 1024 * 1024
"""Largest write sent as one Put Blob, the only upload whose Content-MD5 Azure checks whole."""
DOWNLOAD_CHUNK = 4 * 1024 * 1024
"""Bytes per ranged GET of a download, which bounds what one stream holds in memory."""
COPY_WAIT = 300.0
"""How long a copy Azure reports as pending is awaited before it is aborted."""

BLOCK_ID = re.compile(r"objfs-([0-9a-f]{16})-(\d{5})")
MAX_PARTS = 50_000

_ERRORS_BY_CODE: dict[str, type[StorageError]] = {
    "BlobNotFound": NotFound,
    "ContainerNotFound": NotFound,
    "ResourceNotFound": NotFound,
    "AuthenticationFailed": PermissionDenied,
    "AuthorizationFailure": PermissionDenied,
    "AuthorizationPermissionMismatch": PermissionDenied,
    "AuthorizationProtocolMismatch": PermissionDenied,
    "AuthorizationResourceTypeMismatch": PermissionDenied,
    "AuthorizationServiceMismatch": PermissionDenied,
    "AuthorizationSourceIPMismatch": PermissionDenied,
    "InsufficientAccountPermissions": PermissionDenied,
    "InvalidAuthenticationInfo": PermissionDenied,
    "NoAuthenticationInformation": PermissionDenied,
    "AccountIsDisabled": PermissionDenied,
    "ConditionNotMet": PreconditionFailed,
    "TargetConditionNotMet": PreconditionFailed,
    "BlobAlreadyExists": PreconditionFailed,
    "Md5Mismatch": IntegrityError,
    "InvalidMd5": IntegrityError,
    "Crc64Mismatch": IntegrityError,
    "InvalidBlockList": IntegrityError,
    "InvalidBlobOrBlock": IntegrityError,
    "InvalidBlockId": IntegrityError,
    "BlobArchived": Archived,
    "BlobBeingRehydrated": Archived,
    "InvalidResourceName": InvalidKey,
    "OutOfRangeInput": InvalidKey,
    "ServerBusy": Unavailable,
    "OperationTimedOut": Unavailable,
    "InternalError": Unavailable,
}
_ERRORS_BY_STATUS: dict[int, type[StorageError]] = {
    403: PermissionDenied,
    404: NotFound,
    412: PreconditionFailed,
    429: Unavailable,
}
_REJECTED_CREDENTIALS = frozenset(
    {"AuthenticationFailed", "InvalidAuthenticationInfo", "NoAuthenticationInformation"}
)

# -- metadata names ---------------------------------------------------------------------------

_PLAIN = frozenset(string.ascii_lowercase + string.digits)
_ESCAPE = re.compile(r"_(_|h|x[0-9a-f]{2})")
_UNESCAPED = {"_": b"_", "h": b"-"}
_DIGIT_FIRST = re.compile(r"_n(?=\d)")


def encode_name(name: str) -> str:
    """A metadata name as a C# identifier, which Azure requires: `objfs-test` -> `objfs_htest`.

    Lowercase ASCII letters and digits stay; `_` becomes `__`, `-` becomes `_h`, and any other
    character becomes `_xHH` per UTF-8 byte. A name starting with a digit gets `_n` in front.
    """
    encoded = "".join(
        ch if ch in _PLAIN else "__" if ch == "_" else "_h" if ch == "-" else _hex_bytes(ch) for ch in name
    )
    return f"_n{encoded}" if encoded[:1].isdigit() else encoded


def decode_name(name: str) -> str:
    """Undo `encode_name`; a name objfs did not write comes back as it is unless it holds an escape."""
    if _DIGIT_FIRST.match(name):
        name = name[2:]
    decoded = bytearray()
    position = 0
    for match in _ESCAPE.finditer(name):
        decoded += name[position : match.start()].encode()
        code = match.group(1)
        decoded += _UNESCAPED[code] if len(code) == 1 else bytes.fromhex(code[1:])
        position = match.end()
    decoded += name[position:].encode()
    return decoded.decode(errors="replace")


def encode_metadata(metadata: dict[str, str] | None) -> dict[str, str]:
    return {encode_name(name): value for name, value in (metadata or {}).items()}


def decode_metadata(metadata: dict[str, str] | None) -> dict[str, str]:
    return {decode_name(name): value for name, value in (metadata or {}).items()}


def _hex_bytes(ch: str) -> str:
    return "".join(f"_x{byte:02x}" for byte in ch.encode())


# -- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AzureConnection:
    """Where the account is, how to authenticate, and what every new blob gets (tier, encryption).

    Secrets stay out of `repr`, so a logged or printed connection shows none.
    """

    account_url: str
    credential: Any = field(default=None, repr=False)
    account_key: str | None = field(default=None, repr=False)
    ca_bundle: str | None = None
    proxy: str | None = None
    tier: StandardBlobTier | None = None
    encryption_scope: str | None = None
    customer_key: CustomerProvidedEncryptionKey | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> AzureConnection:
        account_url = _account_url(settings)
        https = urlsplit(account_url).scheme == "https"
        auth = settings.choice(AUTH_TYPE, AUTH_TYPES, "account_key")
        if auth in ("service_principal", "managed_identity") and not https:
            raise BadConfiguration(
                f"{AUTH_TYPE}={auth} needs an https {ACCOUNT_URL}: Azure accepts tokens only over HTTPS"
            )
        mode = settings.sse()
        if mode == "sse-c" and not https:
            raise BadConfiguration(
                f"STORAGE_SSE=sse-c needs an https {ACCOUNT_URL}: Azure accepts customer-provided keys "
                "only over HTTPS"
            )
        if mode == "sse-kms" and settings.get(SSE_KMS_KEY_ID) is None:
            raise BadConfiguration(
                f"STORAGE_SSE=sse-kms on azure-blob needs the encryption scope in {SSE_KMS_KEY_ID}"
            )
        return cls(
            account_url=account_url,
            credential=_credential(settings, auth),
            account_key=settings.get(ACCOUNT_KEY) if auth == "account_key" else None,
            ca_bundle=settings.get(CA_BUNDLE),
            proxy=settings.get(PROXY),
            tier=_tier(settings.get(STORAGE_CLASS)),
            encryption_scope=settings.get(SSE_KMS_KEY_ID) if mode == "sse-kms" else None,
            customer_key=_customer_key(settings.sse_c_key()),
        )

    def service(self, connect_timeout: float, read_timeout: float) -> BlobServiceClient:
        """A client that never retries (objfs.storage.retrying does) and pools enough connections."""
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=POOL_SIZE)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        options: dict[str, Any] = {
            "session": session,
            "retry_total": 0,
            "connection_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "max_single_put_size": SINGLE_PUT_SIZE,
            "max_single_get_size": DOWNLOAD_CHUNK,
            "max_chunk_get_size": DOWNLOAD_CHUNK,
        }
        if self.ca_bundle:
            options["connection_verify"] = self.ca_bundle
        if self.proxy:
            options["proxies"] = {"http": self.proxy, "https": self.proxy}
        return BlobServiceClient(self.account_url, credential=self.credential, **options)

    def encryption(self) -> dict[str, Any]:
        """What every request that writes (or, with a customer key, touches) the bytes presents."""
        if self.customer_key is not None:
            return {"cpk": self.customer_key}
        if self.encryption_scope is not None:
            return {"encryption_scope": self.encryption_scope}
        return {}

    def reads(self) -> dict[str, Any]:
        return {"cpk": self.customer_key} if self.customer_key is not None else {}

    def new_blobs(self) -> dict[str, Any]:
        """What a new blob gets from Put Blob, Put Block List and Copy Blob."""
        tier = {"standard_blob_tier": self.tier} if self.tier is not None else {}
        return {**tier, **self.encryption()}


def _account_url(settings: Settings) -> str:
    url = settings.get(ACCOUNT_URL)
    if url is None:
        account = settings.require(ACCOUNT_NAME, f"the storage account (or the endpoint in {ACCOUNT_URL})")
        return f"https://{account}.blob.core.windows.net"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadConfiguration(
            f"{ACCOUNT_URL} must be an http(s) URL such as https://account.blob.core.windows.net"
        )
    if parts.query:
        raise BadConfiguration(f"{ACCOUNT_URL} must not carry a query; put a SAS token in {SAS_TOKEN}")
    return url.rstrip("/")


def _credential(settings: Settings, auth: str) -> Any:
    """The credential object of one auth type; each names the setting it misses."""
    if auth == "account_key":
        name = settings.require(ACCOUNT_NAME, "the storage account the key belongs to")
        key = settings.require(ACCOUNT_KEY, f"the account key ({AUTH_TYPE}=account_key)")
        try:
            base64.b64decode(key, validate=True)
        except binascii.Error:
            raise BadConfiguration(f"{ACCOUNT_KEY} must be the base64 account key") from None
        return AzureNamedKeyCredential(name, key)
    if auth == "sas_token":
        # a string rather than AzureSasCredential: the SDK then puts the token in blob URLs,
        # which is how the source of a server-side copy is authorized
        return settings.require(SAS_TOKEN, f"the SAS token ({AUTH_TYPE}=sas_token)").lstrip("?")
    if auth == "service_principal":
        return _service_principal(settings)
    return ManagedIdentityCredential(client_id=settings.get(CLIENT_ID))


def _service_principal(settings: Settings) -> TokenCredential:
    what = f"{AUTH_TYPE}=service_principal"
    return ClientSecretCredential(
        tenant_id=settings.require(TENANT_ID, f"the Entra ID tenant ({what})"),
        client_id=settings.require(CLIENT_ID, f"the application (client) id ({what})"),
        client_secret=settings.require(CLIENT_SECRET, f"the client secret ({what})"),
    )


def _tier(name: str | None) -> StandardBlobTier | None:
    if name is None:
        return None
    tier = TIERS.get(name.lower())
    if tier is None:
        raise BadConfiguration(f"{STORAGE_CLASS} must be one of Hot, Cool, Cold, Archive on azure-blob")
    return tier


def _customer_key(key: bytes | None) -> CustomerProvidedEncryptionKey | None:
    """The key as Azure takes it: base64 of the key and of its SHA-256, which Azure checks it by."""
    if key is None:
        return None
    digest = hashlib.sha256(key).digest()
    return CustomerProvidedEncryptionKey(base64.b64encode(key).decode(), base64.b64encode(digest).decode())


# -- the backend ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Upload:
    key: str
    metadata: dict[str, str] | None
    content_type: str | None


class AzureBlobStorage(Storage):
    """One container; every method is one request except copy, complete, abort and list_multipart."""

    scheme = "azure"
    names = SettingNames(bucket=CONTAINER_NAME, endpoint=ACCOUNT_URL)
    capabilities = Capabilities(
        copy=True,
        multipart=True,
        conditional_write=True,
        metadata_in_listing=True,
        min_part_size=1,
        max_part_count=MAX_PARTS,
        max_metadata_bytes=8192,
        etag_is_md5=False,
    )

    def __init__(self, container: str, connection: AzureConnection) -> None:
        self.container = container
        self._connection = connection
        self._endpoint = connection.account_url
        try:
            self._service = connection.service(CONNECT_TIMEOUT, READ_TIMEOUT)
        except ValueError as exc:
            raise BadConfiguration(f"cannot configure {self.describe()}: {exc}") from exc
        self._container = self._service.get_container_client(container)
        self._uploads: dict[str, _Upload] = {}
        self._uploads_lock = threading.Lock()
        if connection.customer_key is not None:
            # Copy Blob cannot read a source under a customer key, and a listing cannot
            # decrypt metadata: both go through the client instead
            self.capabilities = replace(type(self).capabilities, copy=False, metadata_in_listing=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Storage:
        container = settings.require(CONTAINER_NAME, f"the container: {cls.scheme}://container/prefix")
        if not CONTAINER_RULE.fullmatch(container):
            raise BadConfiguration(
                f"{CONTAINER_NAME} is not a container name: 3-63 lowercase letters, digits and single hyphens"
            )
        return cls(container, AzureConnection.from_settings(settings))

    def describe(self) -> str:
        return f"{self.scheme}://{self.container}"

    def check(self) -> None:
        """List at most one blob with short timeouts, so a wrong endpoint fails in seconds.

        A listing rather than the container's properties: a container-scoped SAS may list
        without being allowed to read the container's properties.
        """
        with self._calls():
            pages = self._container.list_blobs(
                results_per_page=1,
                connection_timeout=PROBE_CONNECT_TIMEOUT,
                read_timeout=PROBE_READ_TIMEOUT,
            ).by_page()
            next(pages, None)

    def stat(self, key: str) -> ObjectInfo:
        return _info(key, self._properties(key))

    def read(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        if length == 0:
            self.stat(key)  # an empty range is no request, but a missing key must still be NotFound
            return b""
        with self._calls(key):
            download = self._download(key, offset, length)
            return b"" if download is None else download.readall()

    def read_stream(self, key: str, offset: int = 0) -> Iterator[bytes]:
        """Ranged GETs of DOWNLOAD_CHUNK bytes in turn, each conditional on the first one's etag."""
        with self._calls(key):
            download = self._download(key, offset, None)
            if download is not None:
                yield from download.chunks()

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
        args: dict[str, Any] = {
            "length": size,
            "overwrite": True,
            "metadata": encode_metadata(metadata),
            "content_settings": ContentSettings(content_type=content_type),
            **_conditions(if_match, if_none_match),
            **self._connection.new_blobs(),
        }
        if md5 is not None:
            args.update(self._digest_check(key, data, size, md5))
        with absent_fails_if_match(key, if_match), self._calls(key):
            answer = self._blob(key).upload_blob(data, **args)
        return ObjectInfo(
            key,
            size,
            _etag(answer["etag"]),
            answer["last_modified"].timestamp(),
            content_type,
            dict(metadata or {}),
        )

    def list(
        self,
        prefix: str = "",
        delimiter: str | None = "/",
        token: str | None = None,
        limit: int = 1000,
    ) -> ListPage:
        with_metadata = self.capabilities.metadata_in_listing
        options: dict[str, Any] = {
            "name_starts_with": prefix or None,
            "include": ["metadata"] if with_metadata else None,
            "results_per_page": limit,
        }
        with self._calls():
            if delimiter:
                pager = self._container.walk_blobs(delimiter=delimiter, **options)
            else:
                pager = self._container.list_blobs(**options)
            pages = pager.by_page(continuation_token=token)
            items = list(next(pages, []))
        page = ListPage(next_token=pages.continuation_token or None)
        for item in items:
            if isinstance(item, BlobPrefix):
                page.prefixes.append(item.name)
            else:
                page.objects.append(_info(item.name, item, with_metadata))
        return page

    def copy(
        self,
        src: str,
        dst: str,
        *,
        metadata: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectInfo:
        """Copy Blob within the account, then restate what Copy Blob cannot express.

        Copy Blob keeps the source's content settings and, given no metadata, its metadata; so a
        new content type, or an empty replacement of the metadata, is set after it. Copying onto
        itself only sets the metadata and content type, which keeps the bytes in place.
        """
        if not self.capabilities.copy:
            return self.copy_via_client(src, dst, metadata=metadata, content_type=content_type)
        source = self._properties(src)
        kept = decode_metadata(source.metadata) if metadata is None else metadata
        kind = content_type or source.content_settings.content_type
        if src == dst:
            return self._set_attributes(dst, source, kept, kind)
        with self._calls(dst):
            answer = self._blob(dst).start_copy_from_url(
                self._blob(src).url,
                metadata=encode_metadata(metadata) if metadata else None,
                **self._connection.new_blobs(),
            )
            answer = self._await_copy(dst, answer)
        if kind != source.content_settings.content_type or (metadata == {} and source.metadata):
            return self._set_attributes(dst, source, kept, kind)
        return ObjectInfo(
            dst, source.size, _etag(answer["etag"]), answer["last_modified"].timestamp(), kind, dict(kept)
        )

    def delete(self, key: str) -> None:
        """Delete the blob and its snapshots; an absent blob is fine, an absent container is not."""
        with self._calls(key):
            try:
                self._blob(key).delete_blob(delete_snapshots="include")
            except ResourceNotFoundError as exc:
                if _code(exc) != "BlobNotFound":
                    raise

    def create_multipart(
        self, key: str, *, metadata: dict[str, str] | None = None, content_type: str | None = None
    ) -> str:
        upload_id = f"{int(time.time()):08x}{secrets.token_hex(4)}"
        with self._uploads_lock:
            self._uploads[upload_id] = _Upload(key, dict(metadata or {}), content_type)
        return upload_id

    def upload_part(self, key: str, upload_id: str, number: int, data: Payload, md5: str) -> UploadedPart:
        block_id = _block_id(key, upload_id, number)
        with self._calls(key):
            self._blob(key).stage_block(
                block_id,
                data,
                length=payload_size(data),
                headers={"Content-MD5": md5},
                **self._connection.encryption(),
            )
        return UploadedPart(number, base64.b64decode(md5).hex())

    def complete_multipart(self, key: str, upload_id: str, parts: list[UploadedPart]) -> ObjectInfo:
        """Commit the parts' blocks with the upload's attributes; stat, as the commit gives no size."""
        with self._uploads_lock:
            upload = self._uploads.get(upload_id)
        if upload is None or upload.key != key:
            raise NotFound(
                f"no multipart upload of {key} with id {upload_id} in this process "
                "(Azure keeps an upload's metadata only where it started)",
                key=key,
            )
        blocks = [BlobBlock(_block_id(key, upload_id, part.number)) for part in parts]
        with self._calls(key):
            self._blob(key).commit_block_list(
                blocks,
                metadata=encode_metadata(upload.metadata),
                content_settings=ContentSettings(content_type=upload.content_type),
                **self._connection.new_blobs(),
            )
        with self._uploads_lock:
            self._uploads.pop(upload_id, None)
        return self.stat(key)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Delete the blob only if it is nothing but this upload's uncommitted blocks."""
        with self._uploads_lock:
            self._uploads.pop(upload_id, None)
        blob = self._blob(key)
        with self._calls(key):
            if self._only_blocks_of(blob, upload_id):
                with contextlib.suppress(ResourceNotFoundError):
                    blob.delete_blob()

    def list_multipart(self, prefix: str = "") -> list[MultipartUpload]:
        with self._calls():
            committed = {item.name for item in self._container.list_blobs(name_starts_with=prefix or None)}
            pending = [
                item.name
                for item in self._container.list_blobs(
                    name_starts_with=prefix or None, include=["uncommittedblobs"]
                )
                if item.name not in committed
            ]
            uploads = {
                (name, upload_id)
                for name in pending
                for block in self._blob(name).get_block_list("uncommitted")[1]
                if (upload_id := _upload_of(block.id))
            }
        return [
            MultipartUpload(name, upload_id, float(int(upload_id[:8], 16)))
            for name, upload_id in sorted(uploads)
        ]

    def url(self, key: str, expires: int = 3600) -> str:
        """A read-only SAS URL, which needs the account key to sign."""
        if self._connection.account_key is None:
            raise Unsupported(
                f"{self.describe()}: URLs are signed with the account key, and none is set", key=key
            )
        if self._connection.customer_key is not None:
            raise Unsupported(f"{self.describe()}: a blob under a customer-provided key has no URL", key=key)
        blob = self._blob(key)
        sas = generate_blob_sas(
            blob.account_name or "",
            self.container,
            key,
            account_key=self._connection.account_key,
            permission=BlobSasPermissions(read=True),
            expiry=datetime.now(UTC) + timedelta(seconds=expires),
        )
        return f"{blob.url}?{sas}"

    def close(self) -> None:
        self._service.close()

    # -- helpers -------------------------------------------------------------------------

    def _blob(self, key: str) -> BlobClient:
        """A handle on one blob; it shares the container client's pipeline and connections."""
        return self._container.get_blob_client(key)

    def _properties(self, key: str) -> BlobProperties:
        with self._calls(key):
            return self._blob(key).get_blob_properties(**self._connection.reads())

    def _download(self, key: str, offset: int, length: int | None) -> Any:
        """The SDK's downloader, or None when the range starts at or past the end (416 on Azure).

        Offset 0 is sent as no range at all: Azure refuses any range of an empty blob.
        """
        try:
            return self._blob(key).download_blob(
                offset=None if offset == 0 and length is None else offset,
                length=length,
                max_concurrency=1,
                **self._connection.reads(),
            )
        except HttpResponseError as exc:
            if exc.status_code == 416:
                return None
            raise

    def _only_blocks_of(self, blob: BlobClient, upload_id: str) -> bool:
        """Whether the blob is not committed and every uncommitted block of it is the upload's."""
        try:
            owners = {_upload_of(block.id) for block in blob.get_block_list("uncommitted")[1]}
        except ResourceNotFoundError:
            return False
        if owners != {upload_id}:
            return False
        try:
            blob.get_blob_properties(**self._connection.reads())
        except ResourceNotFoundError:
            return True
        return False

    def _digest_check(self, key: str, data: Payload, size: int, md5: str) -> dict[str, Any]:
        """Azure checks Content-MD5 on a single Put Blob only; larger writes go as blocks, so their
        digest is checked here before anything is sent, and each block's in transit by the SDK."""
        if size <= SINGLE_PUT_SIZE:
            return {"headers": {"Content-MD5": md5}}
        verify_md5(key, data, md5)
        return {"validate_content": True}

    def _await_copy(self, key: str, answer: dict[str, Any]) -> dict[str, Any]:
        """Wait for a copy Azure runs in the background (Azurite never does), within COPY_WAIT.

        A copy still pending then is aborted, so no half-copied blob is left, and Unavailable.
        """
        blob = self._blob(key)
        deadline = time.monotonic() + COPY_WAIT
        pause = 0.2
        status = answer.get("copy_status")
        while status == "pending":
            if time.monotonic() > deadline:
                blob.abort_copy(answer["copy_id"])
                raise Unavailable(
                    f"{self._where(key)}: copy still pending after {COPY_WAIT:.0f} s; aborted", key=key
                )
            time.sleep(pause)
            pause = min(pause * 2, 5.0)
            properties = blob.get_blob_properties(**self._connection.reads())
            status = properties.copy.status
            answer = {**answer, "etag": properties.etag, "last_modified": properties.last_modified}
        if status != "success":
            raise StorageError(f"{self._where(key)}: the copy ended as {status}", key=key)
        return answer

    def _set_attributes(
        self, key: str, source: BlobProperties, metadata: dict[str, str], content_type: str | None
    ) -> ObjectInfo:
        """Set the metadata (and a changed content type) of a blob in place, as a self-copy does."""
        blob = self._blob(key)
        with self._calls(key):
            if content_type != source.content_settings.content_type:
                settings = _with_content_type(source.content_settings, content_type)
                blob.set_http_headers(settings, **self._connection.reads())
            answer = blob.set_blob_metadata(encode_metadata(metadata), **self._connection.encryption())
        mtime = answer["last_modified"].timestamp()
        return ObjectInfo(key, source.size, _etag(answer["etag"]), mtime, content_type, dict(metadata))

    @contextlib.contextmanager
    def _calls(self, key: str | None = None) -> Iterator[None]:
        """Turn every SDK failure into a typed error, once for all methods, so no Azure type escapes."""
        try:
            yield
        except IncompleteReadError as exc:
            raise Unavailable(f"{self._where(key)}: the answer was cut short", key=key) from exc
        except HttpResponseError as exc:
            raise self._service_error(exc, key) from exc
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise Unavailable(f"cannot reach {self._endpoint}: {_unreachable_reason(exc)}", key=key) from exc
        except AzureError as exc:
            raise Unavailable(f"{self._where(key)}: {_first_line(exc)}", key=key) from exc
        except OSError as exc:
            raise Unavailable(f"{self._where(key)}: {exc.strerror or exc}", key=key) from exc

    def _service_error(self, exc: HttpResponseError, key: str | None) -> StorageError:
        if isinstance(exc, ClientAuthenticationError) and exc.response is None:
            # azure-identity could not get a token, so nothing was sent
            return PermissionDenied(f"unusable credentials: {_first_line(exc)}", key=key)
        if exc.response is None:  # the SDK's downloader gave up reading a body it was sent
            return Unavailable(f"{self._where(key)}: {_first_line(exc)}", key=key)
        code = _code(exc) or str(exc.status_code)
        status = int(exc.status_code or 0)
        kind = _ERRORS_BY_CODE.get(code) or _ERRORS_BY_STATUS.get(status)
        if code == "InvalidOperation" and "md5" in (exc.message or "").lower():
            kind = IntegrityError  # Azurite's word for Azure's Md5Mismatch
        kind = kind or (Unavailable if status >= 500 else StorageError)
        request_id = exc.response.headers.get("x-ms-request-id")
        return kind(self._explain(kind, code, key, exc), key=key, request_id=request_id)

    def _explain(self, kind: type[StorageError], code: str, key: str | None, exc: HttpResponseError) -> str:
        """One line a user can act on: which container or key, and the service's own error code."""
        if kind is NotFound and (key is None or code == "ContainerNotFound"):
            return f"container '{self.container}' does not exist at {self._endpoint}"
        if kind is NotFound:
            return f"no such key: {key}"
        if kind is PermissionDenied and code in _REJECTED_CREDENTIALS:
            return f"access denied to container '{self.container}': the credentials were rejected ({code})"
        if kind is PermissionDenied:
            return f"access denied to {self._where(key)}: {_first_line(exc)} ({code})"
        if kind is Archived:
            return f"{self._where(key)} is in the Archive tier; rehydrate it before reading ({code})"
        return f"{self._where(key)}: {_first_line(exc)} ({code})"

    def _where(self, key: str | None) -> str:
        return f"{self.scheme}://{self.container}/{key}" if key else self.describe()


def _with_content_type(settings: ContentSettings, content_type: str | None) -> ContentSettings:
    """The blob's content settings with one changed: Set Blob Properties replaces all of them."""
    return ContentSettings(
        content_type=content_type,
        content_encoding=settings.content_encoding,
        content_language=settings.content_language,
        content_disposition=settings.content_disposition,
        cache_control=settings.cache_control,
        content_md5=settings.content_md5,
    )


def _info(key: str, properties: BlobProperties, with_metadata: bool = True) -> ObjectInfo:
    return ObjectInfo(
        key,
        properties.size,
        _etag(properties.etag),
        properties.last_modified.timestamp(),
        properties.content_settings.content_type,
        decode_metadata(properties.metadata) if with_metadata else None,
    )


def _conditions(if_match: str | None, if_none_match: bool) -> dict[str, Any]:
    if if_match is not None:
        return {"etag": f'"{if_match}"', "match_condition": MatchConditions.IfNotModified}
    if if_none_match:
        return {"match_condition": MatchConditions.IfMissing}
    return {}


def _block_id(key: str, upload_id: str, number: int) -> str:
    """Part `number`'s block id; an id objfs did not make has no upload to add to."""
    if not BLOCK_ID.fullmatch(f"objfs-{upload_id}-{number:05d}") or not 1 <= number <= MAX_PARTS:
        raise NotFound(f"no multipart upload of {key} with id {upload_id} (or no part {number})", key=key)
    return base64.b64encode(f"objfs-{upload_id}-{number:05d}".encode()).decode()


def _upload_of(block_id: str) -> str | None:
    """The upload a block belongs to, or None for a block objfs did not stage."""
    try:
        match = BLOCK_ID.fullmatch(base64.b64decode(block_id).decode())
    except (binascii.Error, UnicodeDecodeError):
        return None
    return match.group(1) if match else None


def _code(exc: HttpResponseError) -> str:
    """Azure's error code, from the header: HEAD answers have no body to carry it."""
    headers = exc.response.headers if exc.response is not None else {}
    code = headers.get("x-ms-error-code") or exc.error_code or ""
    return str(getattr(code, "value", code))


def _etag(etag: str) -> str:
    return etag.strip('"')


def _first_line(exc: BaseException) -> str:
    """Azure's messages go on with RequestId, Time and ErrorCode lines; the first says it all."""
    message = getattr(exc, "message", None) or str(exc)
    lines = message.strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


def _unreachable_reason(exc: AzureError) -> str:
    """Why no answer came, in words, from the chain of errors the SDK wraps."""
    if isinstance(exc, ServiceRequestTimeoutError):
        return "connection timed out"
    if isinstance(exc, ServiceResponseTimeoutError):
        return "no answer in time (read timed out)"
    cause: BaseException | None = exc
    while cause is not None:  # an untrusted certificate is buried under requests' and urllib3's errors
        if isinstance(cause, ssl.SSLCertVerificationError):
            return (
                f"the server's certificate could not be verified ({cause.verify_message}); "
                f"set {CA_BUNDLE} to a PEM file of the CAs to trust"
            )
        cause = _next_cause(cause)
    return unreachable_reason(exc, _next_cause, detail=_first_line(exc))


def _next_cause(exc: BaseException) -> BaseException | None:
    """azure-core keeps the transport's error in `inner_exception`, beside the chain."""
    inner = getattr(exc, "inner_exception", None)
    return inner if isinstance(inner, BaseException) and inner is not exc else raised_from(exc)
