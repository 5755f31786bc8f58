"""Volcengine TOS only: settings, errors, and each field the dialect server translates, all through
the `tos` SDK against moto behind the dialect server (see servers/dialect_tos.py)."""

from __future__ import annotations

import base64
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from backends import tos as tos_backend
from servers.canned import closed_port, open_storage, opened
from servers.dialect_tos import CRC64
from servers.process import ServerProcess, start_server
from servers.s3_dialects import __file__ as dialect_server
from tos.exceptions import TosClientError
from tos.utils import check_crc

from objfs.storage import registry
from objfs.storage.base import (
    Archived,
    BadConfiguration,
    IntegrityError,
    InvalidKey,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    Unavailable,
    content_md5,
)
from objfs.storage.tos import TosStorage

MIB = 1024 * 1024


@pytest.fixture
def tos_settings(request: pytest.FixtureRequest) -> dict[str, str]:
    return tos_backend.settings(request)


@pytest.fixture
def tos(tos_settings: dict[str, str]) -> Iterator[TosStorage]:
    yield from opened(tos_settings, TosStorage)


# -- configuration ---------------------------------------------------------------------------


def test_url_and_storage_type_open_the_same_bucket(tos_settings: dict[str, str]) -> None:
    bucket = tos_settings["VOLCENGINE_TOS_BUCKET_NAME"]
    credentials = {
        name: tos_settings[name] for name in ("VOLCENGINE_TOS_ACCESS_KEY", "VOLCENGINE_TOS_SECRET_KEY")
    }
    flags = {
        "endpoint": tos_backend.ENDPOINT,
        "region": tos_backend.REGION,
        "proxy": tos_settings["STORAGE_PROXY"],
    }
    by_url = registry.open_location(f"tos://{bucket}/some/prefix/", flags, base=credentials)
    by_type = registry.open_location(None, base={**tos_settings, "STORAGE_PREFIX": "some/prefix"})
    assert (by_url.storage.describe(), by_url.prefix) == (f"tos://{bucket}", "some/prefix")
    assert (by_type.storage.describe(), by_type.prefix) == (f"tos://{bucket}", "some/prefix")
    by_url.storage.write("k", b"same")
    assert by_type.storage.read("k") == b"same"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("STORAGE_SSE", "sse-kms", "STORAGE_SSE=sse-kms is not supported by volcengine-tos"),
        ("STORAGE_CLASS", "GLACIER", "STORAGE_CLASS must be one of STANDARD, IA"),
        ("STORAGE_PROXY", "https://127.0.0.1:3128", "STORAGE_PROXY must be an http://host:port URL"),
        ("STORAGE_CA_BUNDLE", "/nonexistent/ca.pem", "STORAGE_CA_BUNDLE does not name a readable file"),
        ("VOLCENGINE_TOS_SECRET_KEY", "", "must be set together"),
    ],
)
def test_settings_it_cannot_honour_are_named(
    tos_settings: dict[str, str], name: str, value: str, message: str
) -> None:
    with pytest.raises(BadConfiguration, match=message):
        open_storage(tos_settings, TosStorage, **{name: value})


@pytest.mark.parametrize("key", ["not base64!", "c2hvcnQ="])
def test_sse_c_key_must_be_a_base64_256_bit_key(tos_settings: dict[str, str], key: str) -> None:
    with pytest.raises(BadConfiguration, match="STORAGE_SSE_C_KEY must be a base64-encoded 256-bit key"):
        open_storage(tos_settings, TosStorage, STORAGE_SSE="sse-c", STORAGE_SSE_C_KEY=key)


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tos", None)
    monkeypatch.delitem(sys.modules, "objfs.storage.tos", raising=False)
    with pytest.raises(BadConfiguration, match=r"objfs\[tos\]"):
        registry.backend_for_scheme("tos").load()


# -- errors ----------------------------------------------------------------------------------


def test_check_names_a_missing_bucket(tos_settings: dict[str, str]) -> None:
    storage = open_storage(tos_settings, TosStorage, VOLCENGINE_TOS_BUCKET_NAME="objfs-no-such-bucket")
    with pytest.raises(NotFound) as caught:
        storage.check()
    assert str(caught.value) == f"bucket 'objfs-no-such-bucket' does not exist at {tos_backend.ENDPOINT}"
    assert caught.value.request_id


def test_check_fails_fast_when_nothing_answers(tos_settings: dict[str, str]) -> None:
    proxy = f"http://127.0.0.1:{closed_port()}"
    storage = open_storage(tos_settings, TosStorage, STORAGE_PROXY=proxy)
    started = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        storage.check()
    assert time.monotonic() - started < 5
    assert (
        str(caught.value) == f"cannot reach {tos_backend.ENDPOINT} through proxy {proxy}: connection refused"
    )


@pytest.fixture(scope="module")
def dialect_with_auth() -> Iterator[ServerProcess]:
    """The dialect server with moto checking signatures against its IAM users, of which there are none."""
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    server = start_server([sys.executable, dialect_server, "{port}"], "s3-dialects-auth", env=env)
    try:
        yield server
    finally:
        server.stop()


def test_check_reports_rejected_credentials(
    tos_settings: dict[str, str], dialect_with_auth: ServerProcess
) -> None:
    storage = open_storage(tos_settings, TosStorage, STORAGE_PROXY=dialect_with_auth.endpoint)
    with pytest.raises(PermissionDenied) as caught:
        storage.check()
    bucket = tos_settings["VOLCENGINE_TOS_BUCKET_NAME"]
    expected = f"access denied to bucket '{bucket}': the credentials were rejected (InvalidAccessKeyId)"
    assert str(caught.value) == expected
    assert "testing" not in str(caught.value)


def test_errors_carry_key_and_request_id(tos: TosStorage) -> None:
    """x-tos-request-id (moto's x-amzn-requestid) and the JSON error body, through the SDK."""
    tos.write("k", b"x")
    with pytest.raises(PreconditionFailed) as caught:
        tos.write("k", b"y", if_none_match=True)
    assert (caught.value.key, bool(caught.value.request_id)) == ("k", True)
    with pytest.raises(NotFound, match="no such key: missing") as missing:
        tos.read("missing", 0, 10)
    assert missing.value.request_id


def test_object_names_tos_refuses_are_invalid_keys(tos: TosStorage) -> None:
    with pytest.raises(InvalidKey):
        tos.write(".", b"x")


# -- integrity: Content-MD5 and CRC64 --------------------------------------------------------


def test_wrong_md5_stores_nothing(tos: TosStorage) -> None:
    with pytest.raises(IntegrityError) as caught:
        tos.write("md5/whole", b"data", md5=content_md5(b"other"))
    assert caught.value.request_id
    assert not tos.exists("md5/whole")
    tos.write("md5/whole", b"data", md5=content_md5(b"data"))
    assert tos.read("md5/whole") == b"data"


def test_part_with_a_wrong_md5_is_rejected(tos: TosStorage) -> None:
    upload_id = tos.create_multipart("md5/obj")
    with pytest.raises(IntegrityError):
        tos.upload_part("md5/obj", upload_id, 1, b"data", content_md5(b"other"))


def test_dialect_crc64_is_crc64_xz() -> None:
    """The published check value of CRC-64/XZ, so the server's CRC is not the SDK's own code."""
    assert CRC64(b"123456789") == 0x995DC9BBDF1939FA


def test_crc64_of_uploads_and_whole_reads_reaches_the_sdk(tos_settings: dict[str, str]) -> None:
    body = os.urandom(MIB + 7)
    client = tos_backend.sdk_client(tos_settings["STORAGE_PROXY"])
    bucket = tos_settings["VOLCENGINE_TOS_BUCKET_NAME"]
    try:
        assert client.put_object(bucket, "crc", content=body).hash_crc64_ecma == CRC64(body)
        whole = client.get_object(bucket, "crc")
        assert (whole.hash_crc64_ecma, whole.read(), whole.read()) == (CRC64(body), body, b"")
    finally:
        client.close()


def test_a_crc64_mismatch_is_an_integrity_error(tos: TosStorage) -> None:
    """No server here corrupts bytes, so take the SDK's own mismatch error as it raises it."""
    with pytest.raises(TosClientError) as sdk_error:
        check_crc("put_object", 1, 2, "R1")
    error = tos._client_error(sdk_error.value, "k")
    assert isinstance(error, IntegrityError)
    assert str(error).startswith("tos://")


# -- metadata, copy, classes, encryption -----------------------------------------------------


def test_metadata_values_round_trip_through_the_sdk_encoding(tos: TosStorage) -> None:
    metadata = {"objfs-test": "50% done, caf\u00e9", "mode": "0644"}
    tos.write("meta", b"x", metadata=metadata)
    assert tos.stat("meta").metadata == metadata
    tos.copy("meta", "meta-copy")
    assert tos.stat("meta-copy").metadata == metadata


def test_large_copy_goes_in_parts(tos: TosStorage) -> None:
    """x-tos-copy-source-range and the JSON CopyPartResult, through a lowered copy limit."""
    tos.copy_limit, tos.copy_part_size = 6 * MIB, 5 * MIB
    data = os.urandom(11 * MIB)
    tos.write("big", data, metadata={"mode": "0600"}, content_type="application/x-test")
    info = tos.copy("big", "big-copy")
    assert info.etag.endswith("-3")
    stored = tos.stat("big-copy")
    assert (stored.size, stored.metadata, stored.content_type) == (
        len(data),
        {"mode": "0600"},
        "application/x-test",
    )
    assert tos.read("big-copy") == data
    assert tos.list_multipart("") == []


def test_storage_class_reaches_the_server_and_archive_reads_are_archived(
    tos_settings: dict[str, str],
) -> None:
    storage = open_storage(tos_settings, TosStorage, STORAGE_CLASS="archive")
    storage.write("cold", b"x")
    client = tos_backend.sdk_client(tos_settings["STORAGE_PROXY"])
    try:
        head = client.head_object(tos_settings["VOLCENGINE_TOS_BUCKET_NAME"], "cold")
    finally:
        client.close()
    assert head.storage_class.value == "ARCHIVE"
    with pytest.raises(Archived, match="restore it before reading"):
        storage.read("cold")


def test_sse_s3_reaches_the_server(tos_settings: dict[str, str]) -> None:
    storage = open_storage(tos_settings, TosStorage, STORAGE_SSE="sse-s3")
    storage.write("enc", b"x")
    storage.copy("enc", "enc-copy", metadata={})
    client = tos_backend.sdk_client(tos_settings["STORAGE_PROXY"])
    try:
        for key in ("enc", "enc-copy"):
            head = client.head_object(tos_settings["VOLCENGINE_TOS_BUCKET_NAME"], key)
            assert head.header["x-tos-server-side-encryption"] == "AES256"
    finally:
        client.close()


def test_sse_c_requests_are_accepted(tos_settings: dict[str, str]) -> None:
    """moto ignores SSE-C headers, so this shows only that every call carrying the key succeeds."""
    key = base64.b64encode(b"k" * 32).decode()
    storage = open_storage(tos_settings, TosStorage, STORAGE_SSE="sse-c", STORAGE_SSE_C_KEY=key)
    storage.write("c", b"secret")
    storage.copy("c", "c2")
    assert (storage.read("c2"), storage.stat("c").size) == (b"secret", 6)


# -- the proxy -------------------------------------------------------------------------------


def test_https_endpoints_go_through_the_proxy_too(tos_settings: dict[str, str]) -> None:
    """The SDK proxies only http:// endpoints; a listener that records the first line shows the CONNECT."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []

    def answer_once() -> None:
        connection, _ = listener.accept()
        with connection:
            seen.append(connection.recv(4096).split(b"\r\n")[0])

    thread = threading.Thread(target=answer_once, daemon=True)
    thread.start()
    proxy = f"http://127.0.0.1:{listener.getsockname()[1]}"
    storage = open_storage(
        tos_settings,
        TosStorage,
        STORAGE_PROXY=proxy,
        VOLCENGINE_TOS_ENDPOINT="https://tos-cn-beijing.volces.com",
    )
    try:
        with pytest.raises(Unavailable, match="through proxy"):
            storage.check()
    finally:
        thread.join(timeout=5)
        listener.close()
    bucket = tos_settings["VOLCENGINE_TOS_BUCKET_NAME"]
    assert [line.rsplit(b" ", 1)[0] for line in seen] == [
        f"CONNECT {bucket}.tos-cn-beijing.volces.com:443".encode()
    ]


def test_proxy_credentials_stay_out_of_messages(tos_settings: dict[str, str]) -> None:
    port = closed_port()
    storage = open_storage(
        tos_settings, TosStorage, STORAGE_PROXY=f"http://user:hunter2-testing@127.0.0.1:{port}"
    )
    with pytest.raises(Unavailable) as caught:
        storage.check()
    assert "hunter2" not in str(caught.value)
    assert f"through proxy http://127.0.0.1:{port}" in str(caught.value)
