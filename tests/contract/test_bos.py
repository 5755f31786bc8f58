"""BOS specifics: the seed's settings, failures, and each field the dialect server translates.

The generic contract already runs on BOS (tests/backends/bos.py); these tests go through the SDK
against the same server, one translated field or setting at a time. The server cannot check BOS
signatures (moto's auth mode fails on `bce-auth-v1`), so rejected credentials are not tested.
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Iterator

import pytest
from backends import bos as bos_backend
from servers.canned import closed_port, open_storage, opened
from servers.proxy import CuttableProxy

from objfs.storage import registry
from objfs.storage.base import (
    Archived,
    BadConfiguration,
    IntegrityError,
    InvalidKey,
    NotFound,
    PreconditionFailed,
    StorageError,
    Unavailable,
    content_md5,
)
from objfs.storage.bos import BosStorage

MIB = 1024 * 1024
CREDENTIALS = {"BAIDU_OBS_ACCESS_KEY": "testing", "BAIDU_OBS_SECRET_KEY": "testing"}


@pytest.fixture
def settings(request: pytest.FixtureRequest) -> dict[str, str]:
    return bos_backend.settings(request)


@pytest.fixture
def bos(settings: dict[str, str]) -> Iterator[BosStorage]:
    yield from opened(settings, BosStorage)


# -- settings --------------------------------------------------------------------------------


def test_url_and_storage_type_name_the_same_bucket(settings: dict[str, str]) -> None:
    bucket, endpoint = settings["BAIDU_OBS_BUCKET_NAME"], settings["BAIDU_OBS_ENDPOINT"]
    from_url = registry.open_location(
        f"bos://{bucket}/some/prefix/", {"endpoint": endpoint}, base=CREDENTIALS
    )
    from_type = registry.open_location(None, base={**settings, "STORAGE_PREFIX": "some/prefix"})
    assert (from_url.storage.describe(), from_url.prefix) == (f"bos://{bucket}", "some/prefix")
    assert (from_type.storage.describe(), from_type.prefix) == (f"bos://{bucket}", "some/prefix")
    from_url.storage.write("k", b"same")
    assert from_type.storage.read("k") == b"same"


def test_the_endpoint_carries_the_region() -> None:
    with pytest.raises(BadConfiguration, match="bos has no region setting"):
        registry.open_location(
            "bos://bkt", {"endpoint": "https://bj.bcebos.com", "region": "bj"}, CREDENTIALS
        )


@pytest.mark.parametrize("missing", ["BAIDU_OBS_ENDPOINT", "BAIDU_OBS_ACCESS_KEY", "BAIDU_OBS_SECRET_KEY"])
def test_required_settings_are_named(missing: str) -> None:
    base = {"BAIDU_OBS_ENDPOINT": "https://bj.bcebos.com", **CREDENTIALS}
    del base[missing]
    with pytest.raises(BadConfiguration, match=f"^{missing} is not set"):
        registry.open_location("bos://bkt", base=base)


def test_an_endpoint_without_a_scheme_is_https() -> None:
    storage = registry.open_location("bos://bkt", {"endpoint": "bj.bcebos.com"}, CREDENTIALS).storage
    assert storage.url("a.txt").startswith("https://bkt.bj.bcebos.com/a.txt?authorization=bce-auth-v1%2F")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("STORAGE_SSE", "sse-s3", "STORAGE_SSE is not supported by baidu-obs"),
        ("STORAGE_CA_BUNDLE", "/etc/ssl/certs/ca.pem", "STORAGE_CA_BUNDLE is not supported by baidu-obs"),
        ("STORAGE_PROXY", "http://user:secret@127.0.0.1:3128", "STORAGE_PROXY must be http://HOST:PORT"),
        ("STORAGE_PROXY", "https://127.0.0.1:3128", "STORAGE_PROXY must be http://HOST:PORT"),
        ("BAIDU_OBS_ENDPOINT", "ftp://bj.bcebos.com", "BAIDU_OBS_ENDPOINT must be an http"),
    ],
)
def test_settings_it_cannot_honour_are_refused(name: str, value: str, message: str) -> None:
    base = {"BAIDU_OBS_ENDPOINT": "https://bj.bcebos.com", **CREDENTIALS, name: value}
    with pytest.raises(BadConfiguration, match=message) as caught:
        registry.open_location("bos://bkt", base=base)
    assert "secret" not in str(caught.value)


def test_a_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in sys.modules if name.partition(".")[0] == "baidubce"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "objfs.storage.bos")
    with pytest.raises(BadConfiguration, match=r"pip install 'objfs\[bos\]'"):
        registry.backend_for_scheme("bos").load()


def test_requests_go_through_the_proxy(settings: dict[str, str]) -> None:
    port = int(settings["BAIDU_OBS_ENDPOINT"].rpartition(":")[2])
    proxy = CuttableProxy(port)
    try:
        storage = open_storage(settings, BosStorage, STORAGE_PROXY=f"http://127.0.0.1:{proxy.port}")
        storage.write("via-proxy", b"x")
        proxy.cut()
        with pytest.raises(Unavailable):
            storage.stat("via-proxy")
    finally:
        proxy.close()


# -- failures --------------------------------------------------------------------------------


def test_check_names_a_missing_bucket(settings: dict[str, str]) -> None:
    storage = open_storage(settings, BosStorage, BAIDU_OBS_BUCKET_NAME="objfs-no-such-bucket")
    with pytest.raises(NotFound) as caught:
        storage.check()
    endpoint = settings["BAIDU_OBS_ENDPOINT"]
    assert str(caught.value) == f"bucket 'objfs-no-such-bucket' does not exist at {endpoint}"
    assert caught.value.request_id


def test_check_fails_fast_when_nothing_answers(settings: dict[str, str]) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    storage = open_storage(settings, BosStorage, BAIDU_OBS_ENDPOINT=endpoint)
    started = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        storage.check()
    assert time.monotonic() - started < 5
    assert str(caught.value) == f"cannot reach {endpoint}: connection refused"


def test_errors_carry_key_and_request_id(bos: BosStorage) -> None:
    """From BOS's JSON error body (`requestId`); a HEAD answer has no body, so stat's have none."""
    bos.write("k", b"x")
    with pytest.raises(PreconditionFailed) as caught:
        bos.write("k", b"y", if_none_match=True)
    assert (caught.value.key, bool(caught.value.request_id)) == ("k", True)
    with pytest.raises(NotFound) as missing:
        bos.read("nope")
    assert (str(missing.value), missing.value.key, bool(missing.value.request_id)) == (
        "no such key: nope",
        "nope",
        True,
    )


@pytest.mark.parametrize("key", ["a/./b", "a/../b", "v1"])
def test_keys_bos_refuses_are_invalid(bos: BosStorage, key: str) -> None:
    with pytest.raises(InvalidKey):
        bos.write(key, b"x")


# -- translated fields -----------------------------------------------------------------------


def test_user_metadata_round_trips_through_x_bce_meta(bos: BosStorage, settings: dict[str, str]) -> None:
    metadata = {
        "mode": "0644",
        "uid": "1000",
        "mtime": "1700000000.5",
        "md5chksum": "abc",
        "objfs-test": "v1",
    }
    bos.write("m", b"x", metadata=metadata)
    assert bos.stat("m").metadata == metadata
    client = bos_backend.client(settings["BAIDU_OBS_ENDPOINT"])
    headers = vars(client.get_object_meta_data(bos.bucket, "m").metadata)
    assert headers["x-bce-meta-objfs-test"] == "v1"


def test_listing_is_bos_json(bos: BosStorage, settings: dict[str, str]) -> None:
    """maxKeys/marker asked for; name, marker, isTruncated, nextMarker, contents, commonPrefixes."""
    for key in ("a", "b/1", "b/2", "c"):
        bos.write(key, b"12345")
    client = bos_backend.client(settings["BAIDU_OBS_ENDPOINT"])
    first = client.list_objects(bos.bucket, max_keys=2, delimiter="/")
    assert (first.name, first.marker, first.max_keys) == (bos.bucket, "", 2)
    assert (first.is_truncated, first.next_marker) == (True, "b/")
    assert [(o.key, o.size, o.storage_class) for o in first.contents] == [("a", 5, "STANDARD")]
    assert first.contents[0].etag == bos.stat("a").etag
    assert first.contents[0].last_modified.endswith("Z")
    assert [p.prefix for p in first.common_prefixes] == ["b/"]
    second = client.list_objects(bos.bucket, max_keys=2, delimiter="/", marker=first.next_marker)
    assert (second.marker, second.is_truncated, second.next_marker) == ("b/", False, None)
    assert [o.key for o in second.contents] == ["c"]
    assert second.common_prefixes == []


def test_copy_answers_etag_and_last_modified(bos: BosStorage) -> None:
    written = bos.write("src", b"data", metadata={"mode": "0600"}, content_type="text/plain")
    copied = bos.copy("src", "dst", metadata={"mode": "0644"})
    assert copied.etag == written.etag == bos.stat("dst").etag
    assert abs(copied.mtime - time.time()) < 60
    assert (bos.stat("dst").metadata, bos.stat("dst").content_type) == ({"mode": "0644"}, "text/plain")


def test_a_wrong_md5_stores_nothing(bos: BosStorage) -> None:
    with pytest.raises(IntegrityError) as caught:
        bos.write("md5/whole", b"data", md5=content_md5(b"other"))
    assert "BadDigest" in str(caught.value)
    assert not bos.exists("md5/whole")
    bos.write("md5/whole", io.BytesIO(b"data"), md5=content_md5(b"data"))
    assert bos.read("md5/whole") == b"data"


def test_a_part_with_a_wrong_md5_is_rejected(bos: BosStorage) -> None:
    upload_id = bos.create_multipart("md5/obj")
    with pytest.raises(IntegrityError):
        bos.upload_part("md5/obj", upload_id, 1, b"data", content_md5(b"other"))
    bos.abort_multipart("md5/obj", upload_id)


def test_metadata_is_given_when_an_upload_completes(bos: BosStorage, settings: dict[str, str]) -> None:
    """BOS takes x-bce-meta-* on CompleteMultipartUpload (with a JSON part list), not on Initiate."""
    client = bos_backend.client(settings["BAIDU_OBS_ENDPOINT"])
    upload_id = client.initiate_multipart_upload(bos.bucket, "mp", content_type="text/plain").upload_id
    part = client.upload_part(bos.bucket, "mp", upload_id, 1, 3, io.BytesIO(b"abc"))
    listed = [{"partNumber": 1, "eTag": part.metadata.etag}]
    done = client.complete_multipart_upload(
        bos.bucket, "mp", upload_id, listed, user_metadata={"mode": "0640"}
    )
    assert (done.bucket, done.key, done.etag) == (bos.bucket, "mp", bos.stat("mp").etag)
    assert (bos.stat("mp").metadata, bos.stat("mp").content_type, bos.read("mp")) == (
        {"mode": "0640"},
        "text/plain",
        b"abc",
    )


@pytest.mark.parametrize("storage_class", ["STANDARD_IA", "COLD"])
def test_storage_class_reaches_the_server(settings: dict[str, str], storage_class: str) -> None:
    storage = open_storage(settings, BosStorage, STORAGE_CLASS=storage_class)
    storage.write("one", b"x")
    upload_id = storage.create_multipart("parts")
    part = storage.upload_part("parts", upload_id, 1, b"y", content_md5(b"y"))
    storage.complete_multipart("parts", upload_id, [part])
    storage.copy("one", "copy")
    client = bos_backend.client(settings["BAIDU_OBS_ENDPOINT"])
    for key in ("one", "parts", "copy"):
        headers = vars(client.get_object_meta_data(storage.bucket, key).metadata)
        assert headers["x-bce-storage-class"] == storage_class
    listed = client.list_objects(storage.bucket)
    assert {item.storage_class for item in listed.contents} == {storage_class}
    assert storage.read("copy") == b"x"


def test_an_archived_object_must_be_restored(settings: dict[str, str]) -> None:
    storage = open_storage(settings, BosStorage, STORAGE_CLASS="ARCHIVE")
    storage.write("cold", b"x")
    assert storage.stat("cold").size == 1
    with pytest.raises(Archived) as caught:
        storage.read("cold")
    assert caught.value.key == "cold"


# -- copies over the single-request limit ----------------------------------------------------


def test_large_copy_goes_in_parts(bos: BosStorage) -> None:
    """The limits are lowered on the instance: 13 MiB copies as parts of 5, 5 and 3 MiB."""
    bos.copy_limit = 6 * MIB
    bos.copy_part_size = 5 * MIB
    data = os.urandom(13 * MIB)
    bos.write("big", data, metadata={"mode": "33188"}, content_type="application/x-test")
    info = bos.copy("big", "big-copy")
    assert info.etag.endswith("-3"), "three parts: moto's multipart etag"
    stored = bos.stat("big-copy")
    assert (stored.size, stored.metadata, stored.content_type) == (
        len(data),
        {"mode": "33188"},
        "application/x-test",
    )
    assert bos.read("big-copy") == data
    assert bos.list_multipart("") == []


def test_a_failed_large_copy_leaves_no_upload(bos: BosStorage) -> None:
    bos.copy_limit = 6 * MIB
    bos.copy_part_size = 5 * MIB
    bos.write("big", os.urandom(7 * MIB))
    bos.copy_part_size = 1 * MIB  # parts under BOS's minimum: completing fails
    with pytest.raises(StorageError, match="EntityTooSmall"):
        bos.copy("big", "big-copy")
    assert bos.list_multipart("") == []
    assert not bos.exists("big-copy")
