"""Supabase Storage specifics, against the session's in-repo fake of its REST API.

The fake checks the bearer key as the server checks a JWT (a wrong key is a real error answer),
stores user metadata and answers errors as Supabase does (HTTP 400, the real status in the body);
what the server stored is looked at through the same REST API with plain httpx.
"""

from __future__ import annotations

import base64
import json
import socket
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from backends.supabase import create_bucket
from servers.proxy import CuttableProxy
from servers.supabase_fake import API_KEY
from storage3.exceptions import StorageApiError

from objfs.storage import registry, supabase
from objfs.storage.base import (
    BadConfiguration,
    InvalidKey,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    StorageError,
    Unavailable,
    Unsupported,
)
from objfs.storage.supabase import SupabaseStorage


@pytest.fixture
def bucket(supabase_endpoint: str) -> str:
    return create_bucket(supabase_endpoint)


def _settings(endpoint: str, bucket: str, **extra: str) -> dict[str, str]:
    return {
        "STORAGE_TYPE": "supabase",
        "SUPABASE_URL": endpoint,
        "SUPABASE_API_KEY": API_KEY,
        "SUPABASE_BUCKET_NAME": bucket,
        **extra,
    }


def _open(endpoint: str, bucket: str, **extra: str) -> SupabaseStorage:
    opened = registry.open_location(None, base=_settings(endpoint, bucket, **extra)).storage
    assert isinstance(opened, SupabaseStorage)
    return opened


@pytest.fixture
def sb(supabase_endpoint: str, bucket: str) -> Iterator[SupabaseStorage]:
    opened = _open(supabase_endpoint, bucket)
    yield opened
    opened.close()


def _server(endpoint: str, method: str, path: str, **kwargs: Any) -> Any:
    """The REST API directly, to see what the server stored."""
    headers = {"apikey": API_KEY, "Authorization": f"Bearer {API_KEY}"}
    response = httpx.request(method, f"{endpoint}/storage/v1/{path}", headers=headers, **kwargs)
    response.raise_for_status()
    return response.json()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- configuration ---------------------------------------------------------------------------


def test_url_and_storage_type_forms_open_the_same_bucket(supabase_endpoint: str, bucket: str) -> None:
    by_url = registry.open_location(
        f"supabase://{bucket}/some/prefix/",
        {"endpoint": supabase_endpoint},
        base={"SUPABASE_API_KEY": API_KEY},
    )
    by_type = registry.open_location(
        None, base=_settings(supabase_endpoint, bucket, STORAGE_PREFIX="some/prefix")
    )
    assert (by_url.storage.describe(), by_url.prefix) == (f"supabase://{bucket}", "some/prefix")
    assert (by_type.storage.describe(), by_type.prefix) == (by_url.storage.describe(), by_url.prefix)
    by_url.storage.write("some/prefix/f", b"x")
    assert by_type.storage.read("some/prefix/f") == b"x"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"STORAGE_SSE": "sse-s3"}, "STORAGE_SSE is not supported by supabase"),
        ({"STORAGE_CLASS": "STANDARD_IA"}, "STORAGE_CLASS is not supported by supabase"),
        ({"SUPABASE_URL": "xyz.supabase.co"}, "SUPABASE_URL must be an http(s) URL"),
        ({"SUPABASE_API_KEY": ""}, "SUPABASE_API_KEY is not set"),
        ({"SUPABASE_BUCKET_NAME": ""}, "SUPABASE_BUCKET_NAME is not set"),
        ({"STORAGE_CA_BUNDLE": "/nonexistent/ca.pem"}, "STORAGE_CA_BUNDLE names /nonexistent/ca.pem"),
    ],
)
def test_bad_settings_are_named(extra: dict[str, str], message: str) -> None:
    with pytest.raises(BadConfiguration, match=message.replace("(", r"\(").replace(")", r"\)")):
        registry.open_location(None, base=_settings("http://127.0.0.1:1", "b", **extra))


def test_a_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "storage3", None)
    monkeypatch.delitem(sys.modules, "objfs.storage.supabase")
    with pytest.raises(BadConfiguration, match=r"pip install 'objfs\[supabase\]'"):
        registry.backend_for_scheme("supabase").load()


# -- check and errors ------------------------------------------------------------------------


def test_check_names_a_missing_bucket(supabase_endpoint: str) -> None:
    opened = _open(supabase_endpoint, "objfs-no-such-bucket")
    with pytest.raises(NotFound) as caught:
        opened.check()
    assert str(caught.value) == f"bucket 'objfs-no-such-bucket' does not exist at {supabase_endpoint}"


def test_a_rejected_key_is_permission_denied(supabase_endpoint: str, bucket: str) -> None:
    opened = _open(supabase_endpoint, bucket, SUPABASE_API_KEY="testing-wrong-key")
    with pytest.raises(PermissionDenied) as caught:
        opened.check()
    assert str(caught.value) == f"access denied to bucket '{bucket}': invalid signature (Unauthorized)"
    assert caught.value.request_id
    with pytest.raises(PermissionDenied) as on_a_key:
        opened.read("k")
    assert on_a_key.value.key == "k"
    assert "testing-wrong-key" not in str(on_a_key.value)


def test_check_fails_fast_when_nothing_answers() -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    opened = _open(endpoint, "b")
    started = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        opened.check()
    assert time.monotonic() - started < 5
    assert str(caught.value) == f"cannot reach {endpoint}: connection refused"


def test_errors_carry_key_and_request_id(sb: SupabaseStorage) -> None:
    sb.write("k", b"x")
    with pytest.raises(PreconditionFailed) as caught:
        sb.write("k", b"y", if_none_match=True)
    assert (str(caught.value), caught.value.key) == ("k already exists", "k")
    assert caught.value.request_id
    with pytest.raises(NotFound) as missing:
        sb.stat("nope")
    assert (str(missing.value), missing.value.key) == ("no such key: nope", "nope")
    assert missing.value.request_id


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        ("500", "InternalError", Unavailable),
        ("544", "DatabaseTimeout", Unavailable),
        ("503", "acquiring_lock_timeout", Unavailable),
        ("429", "too_many_connections", Unavailable),
        ("403", "Unauthorized", PermissionDenied),
        ("400", "InvalidJWT", PermissionDenied),
        ("400", "InvalidKey", InvalidKey),
        ("413", "Payload too large", StorageError),
    ],
)
def test_service_errors_are_typed(sb: SupabaseStorage, status: str, code: str, kind: type) -> None:
    """Answers the fake never gives, in the shape storage3 raises them for Supabase's error bodies."""
    error = sb._service_error(StorageApiError("the server's words", code, status), "k")
    assert type(error) is kind
    assert str(error) == f"supabase://{sb.bucket}/k: the server's words ({code})"


def test_dot_segments_are_invalid_keys(sb: SupabaseStorage) -> None:
    for key in ("a/../b", "./x"):
        with pytest.raises(InvalidKey):
            sb.write(key, b"x")


def test_multipart_is_unsupported(sb: SupabaseStorage) -> None:
    assert not sb.capabilities.multipart
    with pytest.raises(Unsupported, match="no multipart uploads"):
        sb.list_multipart()


def test_requests_go_through_the_proxy(supabase_endpoint: str, bucket: str) -> None:
    proxy = CuttableProxy(int(supabase_endpoint.rsplit(":", 1)[1]))
    try:
        opened = _open(supabase_endpoint, bucket, STORAGE_PROXY=proxy.endpoint)
        opened.write("via-proxy", b"x")
        proxy.cut()
        with pytest.raises(Unavailable, match=f"cannot reach {supabase_endpoint}"):
            opened.read("via-proxy")
    finally:
        proxy.close()


# -- what the server stores ------------------------------------------------------------------


def test_metadata_is_the_objects_user_metadata(sb: SupabaseStorage, supabase_endpoint: str) -> None:
    metadata = {"mode": "0644", "uid": "1000", "objfs-test": "Ünïcode value", "md5chksum": "abc="}
    sb.write("m.txt", b"data", metadata=metadata, content_type="text/plain")
    info = _server(supabase_endpoint, "GET", f"object/info/{sb.bucket}/m.txt")
    assert (info["metadata"], info["content_type"]) == (metadata, "text/plain")
    assert sb.stat("m.txt").metadata == metadata


def test_copy_replaces_metadata_through_the_x_metadata_header(
    sb: SupabaseStorage, supabase_endpoint: str
) -> None:
    sb.write("src", b"data", metadata={"mode": "0644"}, content_type="text/plain")
    sb.copy("src", "dst", metadata={"mode": "0600"}, content_type="application/x-new")
    info = _server(supabase_endpoint, "GET", f"object/info/{sb.bucket}/dst")
    assert (info["metadata"], info["content_type"]) == ({"mode": "0600"}, "application/x-new")
    assert sb.stat("src").metadata == {"mode": "0644"}


def test_a_marker_is_the_folder_placeholder(sb: SupabaseStorage, supabase_endpoint: str) -> None:
    sb.write("dir/", b"", metadata={"mode": "0755"})
    rows = _server(supabase_endpoint, "POST", f"object/list/{sb.bucket}", json={"prefix": "dir/"})
    assert [row["name"] for row in rows] == [".emptyFolderPlaceholder"]
    assert sb.stat("dir/").metadata == {"mode": "0755"}
    sb.delete("dir/")
    assert _server(supabase_endpoint, "POST", f"object/list/{sb.bucket}", json={"prefix": ""}) == []


@pytest.mark.parametrize("key", ["with space/a b.txt", "percent%41/x%2Fy", "q?x#y", "ünï/cöde"])
def test_unusual_names_round_trip(sb: SupabaseStorage, key: str) -> None:
    sb.write(key, b"body", metadata={"k": "v"})
    assert (sb.read(key), sb.stat(key).key, sb.stat(key).metadata) == (b"body", key, {"k": "v"})
    assert [info.key for info in sb.list("", delimiter=None).objects] == [key]
    assert b"".join(sb.read_stream(key, 2)) == b"dy"
    with httpx.Client() as client:
        assert client.get(sb.url(key)).content == b"body"
    sb.copy(key, key + "-copy")
    sb.delete(key)
    assert [info.key for info in sb.list("", delimiter=None).objects] == [key + "-copy"]


def test_listing_follows_the_servers_offset_pages(
    sb: SupabaseStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server pages a folder by offset (folders first); a page of 2 makes every listing span pages."""
    monkeypatch.setattr(supabase, "LIST_PAGE", 2)
    keys = ["d/1", "d/2/x", "d/3", "d/4/y/z", "d/5", "d/6/", "e"]
    for key in keys:
        sb.write(key, b"")
    page = sb.list("d/")
    assert ([info.key for info in page.objects], page.prefixes) == (
        ["d/1", "d/3", "d/5"],
        ["d/2/", "d/4/", "d/6/"],
    )
    assert [info.key for info in sb.list("", delimiter=None).objects] == keys
    second = sb.list("", delimiter=None, token="d/4/y/z", limit=2)
    assert ([info.key for info in second.objects], second.next_token) == (["d/5", "d/6/"], "d/6/")


def test_the_signed_url_carries_a_token_not_the_key(sb: SupabaseStorage) -> None:
    sb.write("u", b"x")
    url = sb.url("u", expires=60)
    assert url.startswith(f"{sb._api}/object/sign/{sb.bucket}/u?token=")
    assert API_KEY not in url


def test_concurrent_writers_share_one_client(sb: SupabaseStorage) -> None:
    with ThreadPoolExecutor(16) as pool:
        etags = list(pool.map(lambda n: sb.write(f"t/{n}", str(n).encode()).etag, range(64)))
    assert len(set(etags)) == 64
    assert len(sb.list("t/").objects) == 64


def test_x_metadata_is_base64_json(sb: SupabaseStorage, supabase_endpoint: str) -> None:
    """A binary upload with x-metadata, as supabase-js sends it, reads back through objfs."""
    encoded = base64.b64encode(json.dumps({"mode": "0600"}).encode()).decode()
    headers = {
        "apikey": API_KEY,
        "Authorization": f"Bearer {API_KEY}",
        "x-metadata": encoded,
        "content-type": "text/plain",
    }
    url = f"{supabase_endpoint}/storage/v1/object/{sb.bucket}/raw"
    httpx.post(url, content=b"raw", headers=headers).raise_for_status()
    assert (sb.stat("raw").metadata, sb.read("raw")) == ({"mode": "0600"}, b"raw")
