"""Azure Blob Storage only: configuration, errors, metadata names, blocks as multipart, tiers, encryption.

Everything runs against Azurite on loopback. Azurite checks Shared Key and SAS signatures and
Content-MD5, keeps access tiers (and refuses to read an Archive blob), and logs request headers
with `--debug`, which is how the encryption tests see what reached it. A second Azurite serves
HTTPS with a self-signed certificate, for STORAGE_CA_BUNDLE and customer-provided keys (which Azure
takes only over HTTPS, and Azurite accepts but ignores).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.identity import ClientSecretCredential, ManagedIdentityCredential
from azure.storage.blob import (
    AccountSasPermissions,
    BlobServiceClient,
    ResourceTypes,
    generate_account_sas,
)
from backends import azure as azure_backend
from servers.azurite import ACCOUNT, ACCOUNT_KEY, HttpsAzurite, account_url, start_azurite
from servers.canned import closed_port

from objfs.storage import registry
from objfs.storage.azure import AzureBlobStorage, AzureConnection, decode_name, encode_name
from objfs.storage.base import (
    Archived,
    BadConfiguration,
    IntegrityError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    Storage,
    Unavailable,
    Unsupported,
    content_md5,
)
from objfs.storage.settings import Settings

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
HTTPS_URL = "https://objfstesting.blob.core.windows.net"


@pytest.fixture
def azure_settings(request: pytest.FixtureRequest) -> dict[str, str]:
    return azure_backend.settings(request)


@pytest.fixture
def azure_storage(azure_settings: dict[str, str]) -> Iterator[Storage]:
    storage = registry.open_location(None, base=azure_settings).storage
    yield storage
    storage.close()


def _open(settings: dict[str, str], **changes: str) -> Storage:
    return registry.open_location(None, base={**settings, **changes}).storage


def _sdk(settings: dict[str, str]) -> BlobServiceClient:
    credential = {"account_name": ACCOUNT, "account_key": ACCOUNT_KEY}
    return BlobServiceClient(settings["AZURE_BLOB_ACCOUNT_URL"], credential=credential)


# -- configuration -----------------------------------------------------------------------------


def test_azure_url_and_storage_type_open_the_same_container(azure_settings: dict[str, str]) -> None:
    container = azure_settings["AZURE_BLOB_CONTAINER_NAME"]
    credentials = {name: value for name, value in azure_settings.items() if "ACCOUNT_" in name}
    by_url = registry.open_location(
        f"azure://{container}/some/prefix/",
        {"endpoint": azure_settings["AZURE_BLOB_ACCOUNT_URL"]},
        base={k: v for k, v in credentials.items() if k != "AZURE_BLOB_ACCOUNT_URL"},
    )
    by_type = registry.open_location(None, base={**azure_settings, "STORAGE_PREFIX": "some/prefix"})
    assert (by_url.storage.describe(), by_url.prefix) == (f"azure://{container}", "some/prefix")
    assert (by_type.storage.describe(), by_type.prefix) == (f"azure://{container}", "some/prefix")
    by_url.storage.write("some/prefix/x", b"1")
    assert by_type.storage.read("some/prefix/x") == b"1"
    with pytest.raises(BadConfiguration, match="no region setting"):
        registry.open_location(f"azure://{container}", {"region": "westeurope"}, base=credentials)


def test_azure_default_endpoint_is_the_account_and_settings_are_checked() -> None:
    key = {"AZURE_BLOB_ACCOUNT_NAME": "objfstesting", "AZURE_BLOB_ACCOUNT_KEY": ACCOUNT_KEY}
    assert AzureConnection.from_settings(Settings(key)).account_url == HTTPS_URL
    assert ACCOUNT_KEY not in repr(AzureConnection.from_settings(Settings(key)))
    bad = {
        "AZURE_BLOB_ACCOUNT_KEY": "not base64!",
        "AZURE_BLOB_AUTH_TYPE": "password",
        "AZURE_BLOB_ACCOUNT_URL": f"{HTTPS_URL}?sv=testing",
        "STORAGE_CLASS": "glacier",
    }
    for name, value in bad.items():
        with pytest.raises(BadConfiguration, match=name) as caught:
            AzureConnection.from_settings(Settings({**key, name: value}))
        assert value not in str(caught.value)
    with pytest.raises(BadConfiguration, match="AZURE_BLOB_CONTAINER_NAME"):
        registry.open_location("azure://No_Such_Name", base=key)


def test_azure_token_credentials_are_built_without_network() -> None:
    base = {"AZURE_BLOB_ACCOUNT_URL": HTTPS_URL, "AZURE_BLOB_CLIENT_ID": "00000000-testing"}
    principal = {
        **base,
        "AZURE_BLOB_AUTH_TYPE": "service_principal",
        "AZURE_BLOB_TENANT_ID": "testing-tenant",
        "AZURE_BLOB_CLIENT_SECRET": "testing-secret",
    }
    assert isinstance(AzureConnection.from_settings(Settings(principal)).credential, ClientSecretCredential)
    for missing in ("AZURE_BLOB_TENANT_ID", "AZURE_BLOB_CLIENT_ID", "AZURE_BLOB_CLIENT_SECRET"):
        partial = {name: value for name, value in principal.items() if name != missing}
        with pytest.raises(BadConfiguration, match=f"{missing} is not set"):
            AzureConnection.from_settings(Settings(partial))
    identity = {**base, "AZURE_BLOB_AUTH_TYPE": "managed_identity"}
    assert isinstance(AzureConnection.from_settings(Settings(identity)).credential, ManagedIdentityCredential)
    for settings in (principal, identity):
        with pytest.raises(BadConfiguration, match="needs an https AZURE_BLOB_ACCOUNT_URL"):
            AzureConnection.from_settings(
                Settings({**settings, "AZURE_BLOB_ACCOUNT_URL": "http://127.0.0.1:1"})
            )


def test_azure_encryption_settings_are_checked(azure_settings: dict[str, str]) -> None:
    key = base64.b64encode(b"k" * 32).decode()
    with pytest.raises(BadConfiguration, match="sse-c needs an https"):
        _open(azure_settings, STORAGE_SSE="sse-c", STORAGE_SSE_C_KEY=key)
    with pytest.raises(BadConfiguration, match="STORAGE_SSE_C_KEY must be"):
        AzureConnection.from_settings(
            Settings(
                {
                    "AZURE_BLOB_ACCOUNT_URL": HTTPS_URL,
                    "AZURE_BLOB_AUTH_TYPE": "sas_token",
                    "AZURE_BLOB_SAS_TOKEN": "sv=testing",
                    "STORAGE_SSE": "sse-c",
                    "STORAGE_SSE_C_KEY": "dGVzdGluZw==",
                }
            )
        )
    with pytest.raises(BadConfiguration, match="encryption scope in STORAGE_SSE_KMS_KEY_ID"):
        _open(azure_settings, STORAGE_SSE="sse-kms")
    storage = _open(azure_settings, STORAGE_SSE="sse-s3")  # Azure encrypts every blob already
    storage.write("plain", b"x")
    assert storage.read("plain") == b"x"


def test_azure_a_customer_key_turns_copy_and_listed_metadata_off() -> None:
    settings = {
        "AZURE_BLOB_ACCOUNT_URL": HTTPS_URL,
        "AZURE_BLOB_SAS_TOKEN": "sv=testing",
        "AZURE_BLOB_AUTH_TYPE": "sas_token",
        "STORAGE_SSE": "sse-c",
        "STORAGE_SSE_C_KEY": base64.b64encode(b"k" * 32).decode(),
    }
    storage = AzureBlobStorage("objfs-testing", AzureConnection.from_settings(Settings(settings)))
    assert not storage.capabilities.copy
    assert not storage.capabilities.metadata_in_listing
    assert AzureBlobStorage.capabilities.copy
    with pytest.raises(Unsupported):
        storage.url("k")


def test_azure_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "azure.storage.blob", None)
    monkeypatch.delitem(sys.modules, "objfs.storage.azure")
    expected = "the azure-blob backend needs its SDK (azure.storage.blob): pip install 'objfs[azure]'"
    with pytest.raises(BadConfiguration, match=re.escape(expected)):
        registry.backend_for_scheme("azure").load()


# -- errors ------------------------------------------------------------------------------------


def test_azure_check_names_a_missing_container(azure_settings: dict[str, str]) -> None:
    storage = _open(azure_settings, AZURE_BLOB_CONTAINER_NAME="objfs-no-such-container")
    endpoint = azure_settings["AZURE_BLOB_ACCOUNT_URL"]
    expected = f"container 'objfs-no-such-container' does not exist at {endpoint}"
    with pytest.raises(NotFound) as caught:
        storage.check()
    assert str(caught.value) == expected
    with pytest.raises(NotFound, match=re.escape(expected)):
        storage.delete("k")


def test_azure_check_reports_rejected_credentials(azure_settings: dict[str, str]) -> None:
    """Azurite checks Shared Key and SAS signatures, answering 403 AuthorizationFailure."""
    wrong_key = base64.b64encode(b"testing" * 8).decode()
    for changes in (
        {"AZURE_BLOB_ACCOUNT_KEY": wrong_key},
        {"AZURE_BLOB_AUTH_TYPE": "sas_token", "AZURE_BLOB_SAS_TOKEN": "sv=2020-01-01&sig=dGVzdGluZw%3D%3D"},
    ):
        with pytest.raises(PermissionDenied) as caught:
            _open(azure_settings, **changes).check()
        assert str(caught.value).startswith(
            f"access denied to azure://{azure_settings['AZURE_BLOB_CONTAINER_NAME']}"
        )
        assert caught.value.request_id
        assert wrong_key not in str(caught.value)


def test_azure_check_fails_fast_when_nothing_answers(azure_settings: dict[str, str]) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}/{ACCOUNT}"
    storage = _open(azure_settings, AZURE_BLOB_ACCOUNT_URL=endpoint)
    started = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        storage.check()
    assert time.monotonic() - started < 5
    assert str(caught.value) == f"cannot reach {endpoint}: connection refused"


def test_azure_proxy_setting_is_used(azure_settings: dict[str, str]) -> None:
    """Through a proxy that is not there, the reachable Azurite cannot be reached."""
    storage = _open(azure_settings, STORAGE_PROXY=f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(Unavailable, match="cannot reach"):
        storage.stat("k")


def test_azure_errors_carry_key_and_request_id(azure_storage: Storage) -> None:
    azure_storage.write("k", b"x")
    with pytest.raises(PreconditionFailed) as caught:
        azure_storage.write("k", b"y", if_none_match=True)
    assert (caught.value.key, bool(caught.value.request_id)) == ("k", True)
    with pytest.raises(NotFound) as missing:
        azure_storage.stat("nope")
    assert (str(missing.value), missing.value.key, bool(missing.value.request_id)) == (
        "no such key: nope",
        "nope",
        True,
    )


# -- metadata names ----------------------------------------------------------------------------

NAMES = [
    "mode",
    "objfs-test",
    "a_b",
    "a__h",
    "_x41",
    "_n1",
    "1st",
    "x-y-z",
    "md5chksum",
    "caf\u00e9",
    "a.b c",
    "A",
]


def test_azure_metadata_names_encode_to_identifiers_and_back() -> None:
    assert encode_name("objfs-test") == "objfs_htest"
    for name in NAMES:
        encoded = encode_name(name)
        assert IDENTIFIER.fullmatch(encoded), encoded
        assert decode_name(encoded) == name
    assert decode_name("Foreign_name") == "Foreign_name"  # names objfs did not write stay as they are


def test_azure_metadata_names_round_trip_through_the_service(
    azure_storage: Storage, azure_settings: dict[str, str]
) -> None:
    metadata = {name: f"v{i}" for i, name in enumerate(NAMES)}
    azure_storage.write("m", b"x", metadata=metadata)
    assert azure_storage.stat("m").metadata == metadata
    assert azure_storage.list("").objects[0].metadata == metadata
    azure_storage.copy("m", "m2")
    assert azure_storage.stat("m2").metadata == metadata
    blob = _sdk(azure_settings).get_blob_client(azure_settings["AZURE_BLOB_CONTAINER_NAME"], "m")
    assert blob.get_blob_properties().metadata["objfs_htest"] == "v1"


# -- digests -----------------------------------------------------------------------------------


def test_azure_wrong_md5_stores_nothing(azure_storage: Storage) -> None:
    """Azurite checks Content-MD5 (its code is InvalidOperation where Azure says Md5Mismatch)."""
    with pytest.raises(IntegrityError) as caught:
        azure_storage.write("md5/whole", b"data", md5=content_md5(b"other"))
    assert caught.value.request_id
    assert not azure_storage.exists("md5/whole")
    azure_storage.write("md5/whole", b"data", md5=content_md5(b"data"))
    assert azure_storage.read("md5/whole") == b"data"

    upload_id = azure_storage.create_multipart("md5/obj")
    with pytest.raises(IntegrityError):
        azure_storage.upload_part("md5/obj", upload_id, 1, b"data", content_md5(b"other"))
    assert azure_storage.list_multipart("md5/") == []


def test_azure_large_write_checks_its_md5_before_sending_blocks(
    azure_settings: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("objfs.storage.azure.SINGLE_PUT_SIZE", 1024)
    storage = _open(azure_settings)
    body = b"0123456789" * 300
    with pytest.raises(IntegrityError):
        storage.write("big", body, md5=content_md5(b"other"))
    assert not storage.exists("big")
    storage.write("big", body, md5=content_md5(body), metadata={"mode": "0644"})
    assert (storage.read("big"), storage.stat("big").metadata) == (body, {"mode": "0644"})
    blob = _sdk(azure_settings).get_blob_client(azure_settings["AZURE_BLOB_CONTAINER_NAME"], "big")
    assert blob.get_block_list("committed")[0]  # it went as blocks, not one Put Blob


# -- multipart as blocks -----------------------------------------------------------------------


def test_azure_abort_spares_a_committed_blob_and_other_uploads(azure_storage: Storage) -> None:
    azure_storage.write("kept", b"old")
    upload_id = azure_storage.create_multipart("kept")
    azure_storage.upload_part("kept", upload_id, 1, b"new", content_md5(b"new"))
    azure_storage.abort_multipart("kept", upload_id)
    assert azure_storage.read("kept") == b"old"

    first = azure_storage.create_multipart("shared", metadata={"mode": "0600"})
    second = azure_storage.create_multipart("shared")
    parts = [azure_storage.upload_part("shared", first, 1, b"one", content_md5(b"one"))]
    azure_storage.upload_part("shared", second, 1, b"two", content_md5(b"two"))
    assert sorted(u.upload_id for u in azure_storage.list_multipart("")) == sorted([first, second])
    azure_storage.abort_multipart("shared", second)
    info = azure_storage.complete_multipart("shared", first, parts)
    assert (azure_storage.read("shared"), info.metadata) == (b"one", {"mode": "0600"})
    assert azure_storage.list_multipart("") == []


def test_azure_upload_completes_only_where_it_started(azure_settings: dict[str, str]) -> None:
    """Azure holds no metadata for uncommitted blocks: another process can abort, not complete."""
    starter, other = _open(azure_settings), _open(azure_settings)
    upload_id = starter.create_multipart("mp", metadata={"mode": "0644"})
    parts = [starter.upload_part("mp", upload_id, 1, b"x", content_md5(b"x"))]
    listed = other.list_multipart("")
    assert [(u.key, u.upload_id) for u in listed] == [("mp", upload_id)]
    assert abs(listed[0].initiated - time.time()) < 60
    with pytest.raises(NotFound, match="in this process"):
        other.complete_multipart("mp", upload_id, parts)
    other.abort_multipart("mp", upload_id)
    assert other.list_multipart("") == []
    with pytest.raises(NotFound):
        starter.upload_part("mp", "not-an-objfs-id", 1, b"x", content_md5(b"x"))


# -- tiers, encryption, other credentials ------------------------------------------------------


def test_azure_storage_class_sets_the_access_tier(azure_settings: dict[str, str]) -> None:
    container = _sdk(azure_settings).get_container_client(azure_settings["AZURE_BLOB_CONTAINER_NAME"])
    cool = _open(azure_settings, STORAGE_CLASS="cool")
    cool.write("cool", b"x")
    upload_id = cool.create_multipart("parts")
    cool.complete_multipart(
        "parts", upload_id, [cool.upload_part("parts", upload_id, 1, b"y", content_md5(b"y"))]
    )
    cool.copy("cool", "copied")
    assert {blob.name: blob.blob_tier for blob in container.list_blobs()} == {
        "cool": "Cool",
        "parts": "Cool",
        "copied": "Cool",
    }

    archive = _open(azure_settings, STORAGE_CLASS="Archive")
    archive.write("cold", b"x")
    assert archive.stat("cold").size == 1
    with pytest.raises(Archived) as caught:
        archive.read("cold")
    assert caught.value.key == "cold"
    assert "Archive tier" in str(caught.value)


@pytest.fixture(scope="module")
def debug_azurite() -> Iterator[tuple[str, str]]:
    """A second Azurite that logs every request's headers: (account URL, log path)."""
    server = start_azurite(["--debug", "{dir}/debug.log"])
    try:
        yield account_url(server), str(server.log_dir / "debug.log")
    finally:
        server.stop()


def _headers_sent(log_path: str, method: str, key: str) -> list[dict[str, str]]:
    found = []
    with open(log_path) as log:
        for line in log:
            match = re.search(r"RequestMethod=(\w+) RequestURL=(\S+) RequestHeaders:(\{.*?\})", line)
            if match and match.group(1) == method and match.group(2).split("?")[0].endswith(f"/{key}"):
                found.append(json.loads(match.group(3)))
    return found


def test_azure_encryption_scope_reaches_the_server(
    debug_azurite: tuple[str, str], request: pytest.FixtureRequest
) -> None:
    endpoint, log_path = debug_azurite
    settings = {**azure_backend.settings(request), "AZURE_BLOB_ACCOUNT_URL": endpoint}
    settings["AZURE_BLOB_CONTAINER_NAME"] = f"objfs-scope-{uuid.uuid4().hex[:12]}"
    _sdk(settings).create_container(settings["AZURE_BLOB_CONTAINER_NAME"])
    storage = _open(settings, STORAGE_SSE="sse-kms", STORAGE_SSE_KMS_KEY_ID="objfs-testing-scope")
    storage.write("scoped", b"x")
    upload_id = storage.create_multipart("scoped-parts")
    storage.upload_part("scoped-parts", upload_id, 1, b"y", content_md5(b"y"))
    puts = _logged_puts(log_path, ["scoped", "scoped-parts"])
    assert len(puts) == 2
    assert all(headers.get("x-ms-encryption-scope") == "objfs-testing-scope" for headers in puts)


def _logged_puts(log_path: str, keys: list[str]) -> list[dict[str, str]]:
    """The PUTs of `keys` in Azurite's log, which it writes a moment after answering."""
    deadline = time.monotonic() + 10
    while True:
        puts = [headers for key in keys for headers in _headers_sent(log_path, "PUT", key)]
        if len(puts) >= len(keys) or time.monotonic() > deadline:
            return puts
        time.sleep(0.05)


def test_azure_sas_token_works_and_gives_no_url(azure_settings: dict[str, str]) -> None:
    sas = generate_account_sas(
        ACCOUNT,
        ACCOUNT_KEY,
        ResourceTypes(container=True, object=True),
        AccountSasPermissions(read=True, write=True, list=True, delete=True, add=True, create=True),
        datetime.now(UTC) + timedelta(hours=1),
    )
    settings = {k: v for k, v in azure_settings.items() if k != "AZURE_BLOB_ACCOUNT_KEY"}
    storage = _open(settings, AZURE_BLOB_AUTH_TYPE="sas_token", AZURE_BLOB_SAS_TOKEN=f"?{sas}")
    storage.check()
    storage.write("s", b"sas", metadata={"objfs-test": "1"})
    storage.copy("s", "t")  # the source is authorized by the token in its URL
    assert (storage.read("t"), storage.stat("t").metadata) == (b"sas", {"objfs-test": "1"})
    with pytest.raises(Unsupported):
        storage.url("s")


# -- HTTPS: a CA bundle and customer-provided keys ---------------------------------------------


@pytest.fixture
def https_settings(azurite_https: HttpsAzurite) -> dict[str, str]:
    """A fresh container on the HTTPS Azurite, in settings without its CA bundle (tests add it)."""
    container = f"objfs-tls-{uuid.uuid4().hex[:16]}"
    credential = {"account_name": ACCOUNT, "account_key": ACCOUNT_KEY}
    with BlobServiceClient(
        azurite_https.endpoint, credential=credential, connection_verify=azurite_https.ca_bundle
    ) as client:
        client.create_container(container)
    return {
        "STORAGE_TYPE": "azure-blob",
        "AZURE_BLOB_ACCOUNT_URL": azurite_https.endpoint,
        "AZURE_BLOB_ACCOUNT_NAME": ACCOUNT,
        "AZURE_BLOB_ACCOUNT_KEY": ACCOUNT_KEY,
        "AZURE_BLOB_CONTAINER_NAME": container,
    }


def test_azure_ca_bundle_trusts_a_self_signed_endpoint(
    https_settings: dict[str, str], azurite_https: HttpsAzurite
) -> None:
    assert https_settings["AZURE_BLOB_ACCOUNT_URL"].startswith("https://127.0.0.1:")
    storage = _open(https_settings, STORAGE_CA_BUNDLE=azurite_https.ca_bundle)
    storage.check()
    written = storage.write("tls/k", b"over https", metadata={"mode": "0644"})
    assert storage.read("tls/k") == b"over https"
    info = storage.stat("tls/k")
    assert (info.size, info.etag, info.metadata) == (10, written.etag, {"mode": "0644"})
    storage.close()


def test_azure_untrusted_certificate_is_named(https_settings: dict[str, str]) -> None:
    """Without the CA bundle the system's CAs are trusted, and the certificate is self-signed."""
    storage = _open(https_settings)
    with pytest.raises(Unavailable) as caught:
        storage.check()
    assert str(caught.value) == (
        f"cannot reach {https_settings['AZURE_BLOB_ACCOUNT_URL']}: the server's certificate could not be "
        "verified (self-signed certificate); set STORAGE_CA_BUNDLE to a PEM file of the CAs to trust"
    )


def test_azure_customer_key_is_sent_with_every_request_of_the_blob(
    https_settings: dict[str, str], azurite_https: HttpsAzurite
) -> None:
    """Azurite accepts a customer-provided key but ignores it: it stores the bytes as they came and
    serves them to a reader with no key or another key, where Azure answers 409
    BlobUsesCustomerProvidedKey. So the test reads the blob back, records what Azurite does without
    the key, and checks in Azurite's --debug log that the key, its SHA-256 and the algorithm went
    with every write (Put Blob, Put Block, Put Block List) and read (HEAD, GET) of objfs's storage.
    """
    raw = b"objfs-testing-customer-key-32byt"
    key, digest = base64.b64encode(raw).decode(), base64.b64encode(hashlib.sha256(raw).digest()).decode()
    trusted = {**https_settings, "STORAGE_CA_BUNDLE": azurite_https.ca_bundle}
    storage = _open(trusted, STORAGE_SSE="sse-c", STORAGE_SSE_C_KEY=key)
    storage.write("cpk", b"secret", metadata={"mode": "0600"})
    assert storage.read("cpk") == b"secret"
    assert storage.stat("cpk").metadata == {"mode": "0600"}
    upload_id = storage.create_multipart("cpk-parts")
    part = storage.upload_part("cpk-parts", upload_id, 1, b"part", content_md5(b"part"))
    assert storage.complete_multipart("cpk-parts", upload_id, [part]).size == 4

    assert _open(trusted).read("cpk") == b"secret"  # Azurite ignores the key; Azure would refuse

    container = https_settings["AZURE_BLOB_CONTAINER_NAME"]
    log = azurite_https.debug_log
    puts = _logged(log, "PUT", f"{container}/cpk", 1) + _logged(log, "PUT", f"{container}/cpk-parts", 2)
    heads = _logged(log, "HEAD", f"{container}/cpk", 1)
    reads = _logged(log, "GET", f"{container}/cpk", 2)
    assert (len(puts), len(heads), len(reads)) == (3, 1, 2)
    expected = {"x-ms-encryption-key": key, "x-ms-encryption-key-sha256": digest}
    expected["x-ms-encryption-algorithm"] = "AES256"
    for headers in [*puts, *heads, reads[0]]:
        assert {name: headers.get(name) for name in expected} == expected
    assert "x-ms-encryption-key" not in reads[1]  # the read without the key


def _logged(log_path: str, method: str, key: str, count: int) -> list[dict[str, str]]:
    """The headers of `method` requests on `key` in Azurite's log, once `count` are there (or 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        found = _headers_sent(log_path, method, key)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)
