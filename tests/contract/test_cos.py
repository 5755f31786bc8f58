"""Tencent COS: configuration, error mapping, and each field the COS dialect server translates.

Most checks go through cos-python-sdk-v5 against moto behind the dialect server
(`servers/dialect_cos.py`), some looking at the answers with the SDK directly. Answers moto never
gives (a bad digest, rejected credentials: it checks no COS signature, and with its own auth on it
cannot parse one) come from a loopback server that replies with COS's own error documents, still
through the SDK's real HTTP path.
"""

from __future__ import annotations

import base64
import os
import sys
import time
from collections.abc import Iterator

import backends
import pytest
from backends.cos import CREDENTIALS, REGION, client
from servers.canned import CannedServer, canned_server, closed_port, open_storage, opened

from objfs.storage import registry
from objfs.storage.base import (
    Archived,
    BadConfiguration,
    IntegrityError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    Unavailable,
    content_md5,
)
from objfs.storage.cos import CosStorage

MIB = 1024 * 1024
ODD_KEYS = ["odd/100% sure", "odd/a+b c", "odd/x&y=z", "odd/\u00e9t\u00e9/1", "odd/\u00e9t\u00e9/2"]


@pytest.fixture
def cos_settings(request: pytest.FixtureRequest) -> dict[str, str]:
    return backends.settings("cos", request)


@pytest.fixture
def cos(cos_settings: dict[str, str]) -> Iterator[CosStorage]:
    yield from opened(cos_settings, CosStorage)


# -- configuration ---------------------------------------------------------------------------


def test_url_and_storage_type_open_the_same_bucket(cos_settings: dict[str, str]) -> None:
    bucket, endpoint = cos_settings["TENCENT_COS_BUCKET_NAME"], cos_settings["TENCENT_COS_ENDPOINT"]
    by_url = registry.open_location(
        f"cos://{bucket}/some/prefix/", {"endpoint": endpoint, "region": REGION}, base=CREDENTIALS
    )
    by_type = registry.open_location(None, base={**cos_settings, "STORAGE_PREFIX": "some/prefix"})
    assert (by_url.storage.describe(), by_url.prefix) == (f"cos://{bucket}", "some/prefix")
    assert (by_type.storage.describe(), by_type.prefix) == (f"cos://{bucket}", "some/prefix")
    by_url.storage.write("some/prefix/f", b"x")
    assert by_type.storage.read("some/prefix/f") == b"x"


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("cos.accelerate.myqcloud.com", "https://b-1250000000.cos.accelerate.myqcloud.com"),
        ("b-1250000000.cos.ap-beijing.myqcloud.com", "https://b-1250000000.cos.ap-beijing.myqcloud.com"),
        ("http://10.1.2.3:8080", "http://10.1.2.3:8080"),
        ("10.1.2.3", "https://10.1.2.3"),
        (None, "https://b-1250000000.cos.ap-guangzhou.myqcloud.com"),
    ],
)
def test_endpoint_forms(endpoint: str | None, expected: str) -> None:
    settings = {"STORAGE_TYPE": "tencent-cos", "TENCENT_COS_BUCKET_NAME": "b-1250000000", **CREDENTIALS}
    settings.update({"TENCENT_COS_REGION": REGION, "TENCENT_COS_ENDPOINT": endpoint or ""})
    storage = open_storage(settings, CosStorage)
    assert storage._endpoint == expected


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"TENCENT_COS_BUCKET_NAME": "no-appid"}, "TENCENT_COS_BUCKET_NAME must be <name>-<appid>"),
        ({"TENCENT_COS_SECRET_KEY": ""}, "TENCENT_COS_SECRET_ID and TENCENT_COS_SECRET_KEY"),
        ({"TENCENT_COS_REGION": "", "TENCENT_COS_ENDPOINT": "http://127.0.0.1:1"}, "TENCENT_COS_REGION"),
        ({"TENCENT_COS_SCHEME": "ftp"}, "TENCENT_COS_SCHEME must be one of https, http"),
        ({"TENCENT_COS_ENDPOINT": "ftp://host"}, "TENCENT_COS_ENDPOINT must be a host name"),
        ({"STORAGE_SSE": "sse-c", "STORAGE_SSE_C_KEY": "c2hvcnQ="}, "STORAGE_SSE_C_KEY must be"),
    ],
)
def test_bad_settings_name_the_setting(
    cos_settings: dict[str, str], changes: dict[str, str], named: str
) -> None:
    with pytest.raises(BadConfiguration, match=named) as caught:
        open_storage(cos_settings, CosStorage, **changes)
    assert "testing" not in str(caught.value)


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "qcloud_cos", None)
    monkeypatch.delitem(sys.modules, "objfs.storage.cos", raising=False)
    with pytest.raises(BadConfiguration, match=r"objfs\[cos\]"):
        registry.backend_for_scheme("cos").load()


def test_generic_settings_reach_the_sdk_config(cos_settings: dict[str, str], tmp_path: object) -> None:
    """CosConfig takes the CA bundle as VerifySSL and the proxy as Proxies; one attempt, bounded waits."""
    storage = open_storage(
        cos_settings, CosStorage, STORAGE_CA_BUNDLE="/etc/ssl/certs/ca.pem", STORAGE_PROXY="http://proxy:3128"
    )
    config = storage._client.get_conf()
    assert (config._verify_ssl, config._proxies["https"]) == ("/etc/ssl/certs/ca.pem", "http://proxy:3128")
    assert (storage._client._retry, config._timeout) == (0, (10, 60))


def test_requests_go_through_the_proxy(cos_settings: dict[str, str]) -> None:
    """With no endpoint the SDK asks for `<bucket>.cos.<region>.myqcloud.com`, which does not
    resolve here, so only the proxy (the dialect server, which takes a request in absolute form
    and reads the bucket from its URL) can have delivered the write."""
    proxy = cos_settings["TENCENT_COS_ENDPOINT"]
    storage = open_storage(cos_settings, CosStorage, TENCENT_COS_ENDPOINT="", STORAGE_PROXY=proxy)
    storage.write("proxied", b"via proxy")
    assert open_storage(cos_settings, CosStorage).read("proxied") == b"via proxy"


# -- errors ------------------------------------------------------------------------------------


def test_missing_bucket_is_named(cos_settings: dict[str, str]) -> None:
    storage = open_storage(
        cos_settings, CosStorage, TENCENT_COS_BUCKET_NAME="objfs-no-such-bucket-1250000000"
    )
    with pytest.raises(NotFound) as caught:
        storage.check()
    endpoint = cos_settings["TENCENT_COS_ENDPOINT"]
    assert str(caught.value) == f"bucket 'objfs-no-such-bucket-1250000000' does not exist at {endpoint}"
    assert caught.value.request_id


def test_unreachable_endpoint_fails_fast(cos_settings: dict[str, str]) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    storage = open_storage(cos_settings, CosStorage, TENCENT_COS_ENDPOINT=endpoint)
    started = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        storage.check()
    assert time.monotonic() - started < 5
    assert str(caught.value) == f"cannot reach {endpoint}: connection refused"
    with pytest.raises(Unavailable, match="connection refused") as caught:
        storage.stat("k")
    assert caught.value.key == "k"


def test_errors_carry_key_and_request_id(cos: CosStorage) -> None:
    """The dialect's error body (Resource, RequestId) and x-cos-request-id header, as the SDK reads them."""
    for call in (cos.stat, cos.read):
        with pytest.raises(NotFound) as caught:
            call("absent")
        assert (str(caught.value), caught.value.key) == ("no such key: absent", "absent")
        assert caught.value.request_id
    upload_id = cos.create_multipart("mp")
    cos.abort_multipart("mp", upload_id)
    # moto answers NoSuchUpload only to an abort (a part or a completion of it fails with 500)
    with pytest.raises(NotFound, match="no multipart upload of mp") as caught, cos._calls("mp"):
        cos._client.abort_multipart_upload(Bucket=cos.bucket, Key="mp", UploadId=upload_id)
    assert caught.value.request_id


def test_archived_object_is_reported(cos_settings: dict[str, str]) -> None:
    storage = open_storage(cos_settings, CosStorage, STORAGE_CLASS="DEEP_ARCHIVE")
    storage.write("cold", b"data")
    with pytest.raises(Archived, match="restore it before reading") as caught:
        storage.read("cold")
    assert (caught.value.key, bool(caught.value.request_id)) == ("cold", True)


def _cos_error(code: str) -> bytes:
    return (
        f"<?xml version='1.0' encoding='utf-8'?><Error><Code>{code}</Code><Message>{code} here</Message>"
        "<Resource>b-1250000000.cos.ap-guangzhou.myqcloud.com/k</Resource>"
        "<RequestId>NjQ0Y2Rh</RequestId><TraceId>T</TraceId></Error>"
    ).encode()


@pytest.fixture
def canned(cos_settings: dict[str, str]) -> Iterator[tuple[CannedServer, CosStorage]]:
    """A server answering as COS does, with its request id header."""
    with canned_server({"x-cos-request-id": "NjQ0Y2Rh"}) as server:
        yield server, open_storage(cos_settings, CosStorage, TENCENT_COS_ENDPOINT=server.endpoint)


def test_rejected_credentials_are_permission_denied(canned: tuple[CannedServer, CosStorage]) -> None:
    server, storage = canned
    server.answer(403, _cos_error("SignatureDoesNotMatch"))
    with pytest.raises(PermissionDenied) as caught:
        storage.check()
    expected = (
        f"access denied to bucket '{storage.bucket}': the credentials were rejected (SignatureDoesNotMatch)"
    )
    assert (str(caught.value), caught.value.request_id) == (expected, "NjQ0Y2Rh")
    with pytest.raises(PermissionDenied) as caught:
        storage.stat("k")  # a HEAD: no body, so the status and the request id header tell it
    assert (caught.value.key, caught.value.request_id) == ("k", "NjQ0Y2Rh")


def test_bad_digest_is_an_integrity_error(canned: tuple[CannedServer, CosStorage]) -> None:
    server, storage = canned
    server.answer(400, _cos_error("BadDigest"))
    with pytest.raises(IntegrityError) as caught:
        storage.upload_part("k", "upload", 1, b"data", content_md5(b"other"))
    assert (caught.value.key, caught.value.request_id) == ("k", "NjQ0Y2Rh")


def test_server_errors_are_unavailable(canned: tuple[CannedServer, CosStorage]) -> None:
    server, storage = canned
    server.answer(503, _cos_error("SlowDown"))
    with pytest.raises(Unavailable, match=r"SlowDown here \(SlowDown\)"):
        storage.list("")


# -- the dialect's fields, through the SDK ----------------------------------------------------


def test_metadata_travels_as_x_cos_meta(cos: CosStorage, cos_settings: dict[str, str]) -> None:
    metadata = {"mode": "0644", "uid": "1000", "mtime": "1700000000.5", "objfs-test": "v1"}
    cos.write("m", b"x", metadata=metadata)
    head = client(cos_settings["TENCENT_COS_ENDPOINT"]).head_object(Bucket=cos.bucket, Key="m")
    assert {name: value for name, value in head.items() if name.startswith("x-cos-meta-")} == {
        f"x-cos-meta-{name}": value for name, value in metadata.items()
    }
    assert cos.stat("m").metadata == metadata


def test_copy_source_and_directive(cos: CosStorage) -> None:
    """x-cos-copy-source in COS host form, and Copy/Replaced, each reaching moto."""
    cos.write("src", b"payload", metadata={"mode": "0600"}, content_type="text/plain")
    kept = cos.copy("src", "kept")
    replaced = cos.copy("src", "replaced", metadata={"mode": "0644"})
    assert (cos.read("kept"), cos.stat("kept").metadata, kept.etag) == (
        b"payload",
        {"mode": "0600"},
        cos.stat("kept").etag,
    )
    assert (cos.read("replaced"), cos.stat("replaced").metadata) == (b"payload", {"mode": "0644"})
    assert cos.stat("replaced").content_type == "text/plain" and replaced.etag


def test_encryption_and_storage_class_reach_the_server(cos_settings: dict[str, str]) -> None:
    endpoint = cos_settings["TENCENT_COS_ENDPOINT"]
    cases = [
        ({"STORAGE_SSE": "sse-s3"}, {"x-cos-server-side-encryption": "AES256"}),
        (
            {"STORAGE_SSE": "sse-kms", "STORAGE_SSE_KMS_KEY_ID": "kms-key-1"},
            {
                "x-cos-server-side-encryption": "cos/kms",
                "x-cos-server-side-encryption-cos-kms-key-id": "kms-key-1",
            },
        ),
        ({"STORAGE_CLASS": "STANDARD_IA"}, {"x-cos-storage-class": "STANDARD_IA"}),
    ]
    for extra, expected in cases:
        storage = open_storage(cos_settings, CosStorage, **extra)
        storage.write("enc", b"x")
        storage.copy("enc", "enc-copy")
        upload_id = storage.create_multipart("enc-mp")
        part = storage.upload_part("enc-mp", upload_id, 1, b"y", content_md5(b"y"))
        storage.complete_multipart("enc-mp", upload_id, [part])
        for key in ("enc", "enc-copy", "enc-mp"):
            head = client(endpoint).head_object(Bucket=storage.bucket, Key=key)
            assert {name: head.get(name) for name in expected} == expected, (extra, key)


def test_sse_c_key_is_presented_on_every_request_that_touches_bytes(cos_settings: dict[str, str]) -> None:
    """moto keeps no SSE-C state, so this proves the SDK accepts the arguments on each path."""
    key = base64.b64encode(os.urandom(32)).decode()
    storage = open_storage(cos_settings, CosStorage, STORAGE_SSE="sse-c", STORAGE_SSE_C_KEY=key)
    assert set(storage._reads) == {"SSECustomerAlgorithm", "SSECustomerKey", "SSECustomerKeyMD5"}
    storage.write("c", b"secret")
    storage.copy("c", "c2")
    assert (storage.read("c2"), storage.stat("c").size) == (b"secret", 6)
    assert key not in repr(storage._connection) and "testing" not in repr(storage._connection)


def test_odd_keys_list_and_page_exactly(cos: CosStorage) -> None:
    """V1 markers (served by moto's V2) and url-encoded listings round-trip keys that need escaping."""
    for key in ODD_KEYS:
        cos.write(key, b"x")
    names, token = [], None
    while True:
        page = cos.list("odd/", token=token, limit=1)
        names += [info.key for info in page.objects] + page.prefixes
        token = page.next_token
        if token is None:
            break
    assert names == ["odd/100% sure", "odd/a+b c", "odd/x&y=z", "odd/\u00e9t\u00e9/"]
    assert [info.key for info in cos.list("odd/", delimiter=None).objects] == ODD_KEYS


def test_marker_past_a_common_prefix_skips_it(cos: CosStorage, cos_settings: dict[str, str]) -> None:
    """The SDK's own V1 call: a marker naming a common prefix continues after everything under it."""
    for key in ("d/a", "d/b/1", "d/b/2", "d/c"):
        cos.write(key, b"x")
    raw = client(cos_settings["TENCENT_COS_ENDPOINT"])
    first = raw.list_objects(Bucket=cos.bucket, Prefix="d/", Delimiter="/", MaxKeys=2)
    assert (first["IsTruncated"], first["NextMarker"]) == ("true", "d/b/")
    rest = raw.list_objects(Bucket=cos.bucket, Prefix="d/", Delimiter="/", Marker="d/b/", MaxKeys=2)
    assert ([item["Key"] for item in rest["Contents"]], rest.get("CommonPrefixes", [])) == (["d/c"], [])
    assert (rest["IsTruncated"], rest["Marker"]) == ("false", "d/b/")


def test_multipart_listing_keeps_odd_keys(cos: CosStorage) -> None:
    ids = {key: cos.create_multipart(key) for key in ODD_KEYS[:3]}
    listed = {upload.key: upload.upload_id for upload in cos.list_multipart("odd/")}
    assert listed == ids
    for key, upload_id in ids.items():
        cos.abort_multipart(key, upload_id)
    assert cos.list_multipart("") == []


def test_presigned_url_is_path_style_through_an_ip_endpoint(cos: CosStorage) -> None:
    url = cos.url("dir/u.txt")
    assert url.startswith(f"{cos._endpoint}/{cos.bucket}/dir/u.txt?q-sign-algorithm=sha1&")


def test_conditional_writes_are_checked_before_the_write(cos: CosStorage) -> None:
    """COS has no conditional PUT, so the capability says so and a stat guards the write."""
    assert not CosStorage.capabilities.conditional_write
    first = cos.write("c", b"1")
    with pytest.raises(PreconditionFailed, match="already exists"):
        cos.write("c", b"2", if_none_match=True)
    with pytest.raises(PreconditionFailed, match="etag is no longer"):
        cos.write("c", b"2", if_match="0" * 32)
    assert cos.write("c", b"2", if_match=first.etag).etag != first.etag


# -- copies over the single-request limit ------------------------------------------------------


@pytest.fixture
def large(cos: CosStorage) -> bytes:
    cos.copy_limit, cos.copy_part_size = 6 * MIB, 5 * MIB
    data = os.urandom(13 * MIB)
    cos.write("big", data, metadata={"mode": "33188"}, content_type="application/x-test")
    return data


def test_large_copy_goes_in_parts(cos: CosStorage, large: bytes) -> None:
    """x-cos-copy-source-range reaches moto through upload_part_copy. The If-Match guard on each
    part is sent too, but moto ignores x-amz-copy-source-if-match, so nothing here can fail it."""
    info = cos.copy("big", "dir/copy")
    assert info.etag.endswith("-3"), "three parts: the multipart path was taken"
    stored = cos.stat("dir/copy")
    assert (stored.etag, stored.size, stored.metadata) == (info.etag, len(large), {"mode": "33188"})
    assert stored.content_type == "application/x-test"
    assert cos.read("dir/copy") == large
    assert cos.copy("big", "big", metadata={"mode": "33152"}).metadata == {"mode": "33152"}
    assert (cos.read("big"), cos.stat("big").metadata) == (large, {"mode": "33152"})
