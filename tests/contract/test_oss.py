"""Aliyun OSS: configuration, error mapping, and each field the OSS dialect server translates.

Most checks go through oss2 against moto behind the dialect server (`servers/dialect_oss.py`), and
some look at what moto stored with boto3, which that server passes through untranslated. Answers
moto never gives (a bad digest, rejected credentials: it checks no OSS signature) come from a
loopback server that replies with OSS's own error document, still through oss2's real HTTP path.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from typing import Any
from urllib.request import urlopen

import backends
import boto3
import oss2
import pytest
from servers.canned import CannedServer, canned_server, closed_port, open_storage, opened

from objfs.storage import registry
from objfs.storage.base import (
    Archived,
    BadConfiguration,
    IntegrityError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    StorageError,
    Unavailable,
    content_md5,
)
from objfs.storage.oss import OssConnection, OssStorage
from objfs.storage.settings import Settings

MIB = 1024 * 1024
REGION = "us-east-1"
CREDENTIALS = {"ALIYUN_OSS_ACCESS_KEY": "testing", "ALIYUN_OSS_SECRET_KEY": "testing"}


@pytest.fixture
def oss_settings(request: pytest.FixtureRequest) -> dict[str, str]:
    return backends.settings("oss", request)


@pytest.fixture
def oss(oss_settings: dict[str, str]) -> Iterator[OssStorage]:
    yield from opened(oss_settings, OssStorage)


def _stored(settings: dict[str, str], key: str) -> dict[str, Any]:
    """What moto keeps for `key`, read with boto3, which the dialect server passes through as S3."""
    client = boto3.client(
        "s3",
        endpoint_url=settings["ALIYUN_OSS_ENDPOINT"],
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    try:
        return client.head_object(Bucket=settings["ALIYUN_OSS_BUCKET_NAME"], Key=key)
    finally:
        client.close()


def _raw(settings: dict[str, str]) -> oss2.Bucket:
    auth = oss2.AuthV4("testing", "testing")
    return oss2.Bucket(
        auth, settings["ALIYUN_OSS_ENDPOINT"], settings["ALIYUN_OSS_BUCKET_NAME"], region=REGION
    )


# -- configuration ---------------------------------------------------------------------------


def test_url_and_storage_type_name_the_same_bucket_and_prefix(oss_settings: dict[str, str]) -> None:
    bucket = oss_settings["ALIYUN_OSS_BUCKET_NAME"]
    flags = {"endpoint": oss_settings["ALIYUN_OSS_ENDPOINT"], "region": REGION}
    by_url = registry.open_location(f"oss://{bucket}/some/prefix/", flags, base=CREDENTIALS)
    by_type = registry.open_location(None, base={**oss_settings, "ALIYUN_OSS_PATH": "some/prefix"})
    assert (by_url.storage.describe(), by_url.prefix) == (f"oss://{bucket}", "some/prefix")
    assert (by_type.storage.describe(), by_type.prefix) == (f"oss://{bucket}", "some/prefix")
    by_url.storage.write("k", b"via url")
    assert by_type.storage.read("k") == b"via url"


def test_v1_signatures_work_too(oss_settings: dict[str, str]) -> None:
    storage = open_storage(
        {k: v for k, v in oss_settings.items() if k != "ALIYUN_OSS_AUTH_VERSION"}, OssStorage
    )
    assert storage._connection.auth_version == "v1"
    storage.write("dir/v1", b"signed v1", metadata={"mode": "0644"})
    assert (storage.read("dir/v1"), storage.stat("dir/v1").metadata) == (b"signed v1", {"mode": "0644"})
    assert storage.list("dir/").objects[0].key == "dir/v1"
    with urlopen(storage.url("dir/v1"), timeout=10) as answer:  # OSSAccessKeyId=...&Signature=...
        assert answer.read() == b"signed v1"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ALIYUN_OSS_AUTH_VERSION": "v4", "ALIYUN_OSS_REGION": ""}, "ALIYUN_OSS_REGION"),
        ({"ALIYUN_OSS_AUTH_VERSION": "v3"}, "ALIYUN_OSS_AUTH_VERSION must be one of v1, v4"),
        ({"ALIYUN_OSS_ENDPOINT": "", "ALIYUN_OSS_REGION": ""}, "ALIYUN_OSS_ENDPOINT is not set"),
        ({"ALIYUN_OSS_SECRET_KEY": ""}, "ALIYUN_OSS_SECRET_KEY is not set"),
        ({"STORAGE_SSE": "sse-c", "STORAGE_SSE_C_KEY": "x"}, "sse-c is not supported by aliyun-oss"),
    ],
)
def test_bad_settings_are_named(changes: dict[str, str], message: str) -> None:
    base = {"ALIYUN_OSS_ENDPOINT": "http://127.0.0.1:1", "ALIYUN_OSS_REGION": REGION, **CREDENTIALS}
    with pytest.raises(BadConfiguration, match=message) as caught:
        OssConnection.from_settings(Settings({**base, **changes}))
    assert "testing" not in str(caught.value)


def test_a_malformed_bucket_name_is_a_configuration_error() -> None:
    settings = {"ALIYUN_OSS_ENDPOINT": "http://127.0.0.1:1", "ALIYUN_OSS_BUCKET_NAME": "Not_A_Bucket"}
    with pytest.raises(BadConfiguration, match="cannot configure oss://Not_A_Bucket"):
        registry.open_location(None, base={"STORAGE_TYPE": "aliyun-oss", **settings, **CREDENTIALS})


def test_the_endpoint_follows_from_the_region() -> None:
    connection = OssConnection.from_settings(Settings({"ALIYUN_OSS_REGION": "cn-hangzhou", **CREDENTIALS}))
    assert connection.endpoint == "https://oss-cn-hangzhou.aliyuncs.com"
    assert "testing" not in repr(connection)


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "oss2", None)
    monkeypatch.delitem(sys.modules, "objfs.storage.oss")
    with pytest.raises(BadConfiguration, match=r"objfs\[oss\]"):
        registry.backend_for_scheme("oss").load()


# -- check and errors from the dialect server ------------------------------------------------


def test_check_names_a_missing_bucket(oss_settings: dict[str, str]) -> None:
    storage = open_storage(oss_settings, OssStorage, ALIYUN_OSS_BUCKET_NAME="objfs-no-such-bucket")
    with pytest.raises(NotFound) as caught:
        storage.check()
    endpoint = oss_settings["ALIYUN_OSS_ENDPOINT"]
    assert str(caught.value) == f"bucket 'objfs-no-such-bucket' does not exist at {endpoint}"
    assert caught.value.request_id  # x-oss-request-id, which the dialect server adds


def test_check_fails_fast_when_nothing_answers(oss_settings: dict[str, str]) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    storage = open_storage(oss_settings, OssStorage, ALIYUN_OSS_ENDPOINT=endpoint)
    started = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        storage.check()
    assert time.monotonic() - started < 5
    assert str(caught.value) == f"cannot reach {endpoint}: connection refused"


def test_missing_key_carries_key_and_request_id(oss: OssStorage) -> None:
    with pytest.raises(NotFound) as caught:
        oss.read("nope", 0, 10)
    assert (str(caught.value), caught.value.key) == ("no such key: nope", "nope")
    assert caught.value.request_id


# -- dialect fields, each through oss2 -------------------------------------------------------


def test_forbid_overwrite_is_put_if_absent(oss: OssStorage, oss_settings: dict[str, str]) -> None:
    oss.write("once", b"1")
    with pytest.raises(PreconditionFailed) as caught:
        oss.write("once", b"2", if_none_match=True)
    assert (str(caught.value), caught.value.key) == ("once already exists", "once")
    assert caught.value.request_id
    with pytest.raises(oss2.exceptions.ServerError) as raw:
        _raw(oss_settings).put_object("once", b"3", headers={"x-oss-forbid-overwrite": "true"})
    assert (raw.value.status, raw.value.code) == (409, "FileAlreadyExists")
    assert oss.read("once") == b"1"


def test_listing_entries_have_a_type(oss: OssStorage, oss_settings: dict[str, str]) -> None:
    oss.write("listed", b"x")
    [entry] = _raw(oss_settings).list_objects_v2("", continuation_token="").object_list
    assert (entry.key, entry.type, entry.size) == ("listed", "Normal", 1)


def test_multipart_listing_has_next_markers(oss: OssStorage, oss_settings: dict[str, str]) -> None:
    upload_id = oss.create_multipart("mp")
    listed = _raw(oss_settings).list_multipart_uploads()
    assert [(u.key, u.upload_id) for u in listed.upload_list] == [("mp", upload_id)]
    assert (listed.next_key_marker, listed.next_upload_id_marker) == ("", "")


def test_metadata_and_content_type_reach_the_server(oss: OssStorage, oss_settings: dict[str, str]) -> None:
    oss.write("m", b"x", metadata={"objfs-test": "v1", "mode": "0644"}, content_type="text/x-test")
    stored = _stored(oss_settings, "m")
    assert (stored["Metadata"], stored["ContentType"]) == (
        {"objfs-test": "v1", "mode": "0644"},
        "text/x-test",
    )
    oss.copy("m", "m", metadata={"mode": "0600"})  # x-oss-metadata-directive: REPLACE
    assert _stored(oss_settings, "m")["Metadata"] == {"mode": "0600"}


def test_xml_objects_pass_untouched(oss: OssStorage) -> None:
    body = b'<?xml version="1.0"?><ListBucketResult xmlns="urn:x"><Contents></Contents></ListBucketResult>'
    oss.write("doc.xml", body, content_type="application/xml")
    assert oss.read("doc.xml") == body
    assert oss.read("doc.xml", 5, 10) == body[5:15]


@pytest.mark.parametrize(
    ("sse", "expected"),
    [
        ({"STORAGE_SSE": "sse-s3"}, {"ServerSideEncryption": "AES256"}),
        (
            {"STORAGE_SSE": "sse-kms", "STORAGE_SSE_KMS_KEY_ID": "objfs-test-key"},
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "objfs-test-key"},
        ),
    ],
)
def test_encryption_reaches_the_server(
    oss_settings: dict[str, str], sse: dict[str, str], expected: dict[str, str]
) -> None:
    storage = open_storage(oss_settings, OssStorage, **sse)
    storage.write("plain", b"x")
    storage.copy("plain", "copied")
    storage.complete_multipart(
        "parts",
        upload := storage.create_multipart("parts"),
        [storage.upload_part("parts", upload, 1, b"y", content_md5(b"y"))],
    )
    for key in ("plain", "copied", "parts"):
        stored = _stored(oss_settings, key)
        assert {name: stored.get(name) for name in expected} == expected


@pytest.mark.parametrize(
    ("oss_class", "s3_class"),
    [
        ("Standard", "STANDARD"),
        ("IA", "STANDARD_IA"),
        ("Archive", "GLACIER"),
        ("ColdArchive", "DEEP_ARCHIVE"),
    ],
)
def test_storage_class_reaches_the_server(
    oss_settings: dict[str, str], oss_class: str, s3_class: str
) -> None:
    storage = open_storage(oss_settings, OssStorage, STORAGE_CLASS=oss_class)
    storage.write("classy", b"x")
    assert _stored(oss_settings, "classy").get("StorageClass", "STANDARD") == s3_class


def test_archived_object_cannot_be_read(oss_settings: dict[str, str]) -> None:
    storage = open_storage(oss_settings, OssStorage, STORAGE_CLASS="Archive")
    storage.write("cold", b"frozen")
    assert storage.stat("cold").size == 6
    with pytest.raises(Archived) as caught:
        storage.read("cold")
    assert caught.value.key == "cold"
    expected = "is archived (Archive-class); restore it before reading (InvalidObjectState)"
    assert str(caught.value) == f"{storage.describe()}/cold {expected}"


def test_large_copy_goes_in_parts(oss: OssStorage) -> None:
    data = os.urandom(13 * MIB)
    oss.write("big", data, metadata={"mode": "0644"}, content_type="application/x-test")
    oss.copy_limit, oss.copy_part_size = 6 * MIB, 5 * MIB
    info = oss.copy("big", "dir/copy")
    assert info.etag.endswith("-3"), "three parts: the multipart path was taken"
    assert oss.read("dir/copy") == data
    stored = oss.stat("dir/copy")
    assert (stored.metadata, stored.content_type) == ({"mode": "0644"}, "application/x-test")
    assert oss.list_multipart("") == []


def test_large_copy_of_a_vanished_source_aborts(oss: OssStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed part aborts the upload. (Each part also carries x-oss-copy-source-if-match, so a
    source rewritten mid-copy fails on OSS; moto ignores that header, so deletion stands in.)"""
    oss.write("big", os.urandom(13 * MIB))
    oss.copy_limit, oss.copy_part_size = 6 * MIB, 5 * MIB
    real_stat = oss.stat

    def stat_then_delete(key: str) -> Any:
        info = real_stat(key)
        oss.delete(key)
        return info

    monkeypatch.setattr(oss, "stat", stat_then_delete)
    with pytest.raises(NotFound):
        oss.copy("big", "dir/copy")
    monkeypatch.undo()
    assert oss.list_multipart("") == []
    assert not oss.exists("dir/copy")


# -- answers moto never gives, from a loopback server replying as OSS does -------------------


def _oss_error(code: str | None) -> bytes:
    return b"" if code is None else f"<Error><Code>{code}</Code><Message>m</Message></Error>".encode()


@pytest.fixture
def canned() -> Iterator[tuple[CannedServer, OssStorage]]:
    """A server answering as OSS does, with its request id header."""
    with canned_server({"x-oss-request-id": "R-OSS-1"}) as server:
        storage = OssStorage("objfs-any", OssConnection(server.endpoint, "testing", "testing"))
        yield server, storage
        storage.close()


@pytest.mark.parametrize(
    ("status", "code", "kind", "message"),
    [
        (400, "InvalidDigest", IntegrityError, "oss://objfs-any/k: m (InvalidDigest)"),
        (400, "BadDigest", IntegrityError, "oss://objfs-any/k: m (BadDigest)"),
        (403, "InvalidAccessKeyId", PermissionDenied, "the credentials were rejected (InvalidAccessKeyId)"),
        (
            403,
            "SignatureDoesNotMatch",
            PermissionDenied,
            "the credentials were rejected (SignatureDoesNotMatch)",
        ),
        (403, "AccessDenied", PermissionDenied, "access denied to oss://objfs-any/k (AccessDenied)"),
        (503, "ServiceUnavailable", Unavailable, "oss://objfs-any/k: m (ServiceUnavailable)"),
        (500, None, Unavailable, "oss://objfs-any/k: request failed (500)"),
        (412, "PreconditionFailed", PreconditionFailed, "(PreconditionFailed)"),
    ],
)
def test_oss_errors_are_typed(
    canned: tuple[CannedServer, OssStorage],
    status: int,
    code: str | None,
    kind: type[StorageError],
    message: str,
) -> None:
    server, storage = canned
    server.answer(status, _oss_error(code))
    for call in (
        lambda: storage.write("k", b"data", md5=content_md5(b"other")),
        lambda: storage.upload_part("k", "upload", 1, b"data", content_md5(b"other")),
    ):
        with pytest.raises(kind, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
            call()
        assert (caught.value.key, caught.value.request_id) == ("k", "R-OSS-1")
        assert "testing" not in str(caught.value)


def test_a_head_error_has_no_body_but_is_typed(canned: tuple[CannedServer, OssStorage]) -> None:
    server, storage = canned
    server.answer(403)
    with pytest.raises(PermissionDenied, match=r"access denied to oss://objfs-any/k \(403\)"):
        storage.stat("k")
