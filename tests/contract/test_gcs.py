"""Google Cloud Storage specifics, against the session's fake-gcs-server.

fake-gcs-server checks no credentials, no MD5 and no customer encryption key, so those are shown by
what reaches the server (the requests' headers and bodies, seen through a response hook of the real
session) or by GCS's documented answers; everything else is the server's own behaviour.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Any
from urllib.request import urlopen

import pytest
import requests
from backends.gcs import create_bucket
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from servers.canned import closed_port
from servers.proxy import CuttableProxy

from objfs.storage import registry
from objfs.storage.base import (
    BadConfiguration,
    IntegrityError,
    InvalidKey,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    Storage,
    Unavailable,
    Unsupported,
    content_md5,
)
from objfs.storage.gcs import GcsStorage, _error_kind

SSE_C_KEY = base64.b64encode(b"testing-key-testing-key-testing!").decode()


@pytest.fixture
def bucket(fake_gcs_endpoint: str) -> str:
    return create_bucket(fake_gcs_endpoint)


def _open(endpoint: str, bucket: str, **settings: str) -> GcsStorage:
    base = {
        "STORAGE_TYPE": "google-storage",
        "GOOGLE_STORAGE_ENDPOINT": endpoint,
        "GOOGLE_STORAGE_BUCKET_NAME": bucket,
        **settings,
    }
    storage_ = registry.open_location(None, base=base).storage
    assert isinstance(storage_, GcsStorage)
    return storage_


@pytest.fixture
def gcs(fake_gcs_endpoint: str, bucket: str) -> Iterator[GcsStorage]:
    opened = _open(fake_gcs_endpoint, bucket)
    yield opened
    opened.close()


def _server_view(endpoint: str, bucket: str) -> Any:
    """The bucket as the SDK sees it directly, to check what the server stored."""
    client = storage.Client(
        project="testing", credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint}
    )
    return client.bucket(bucket)


def _sent_requests(gcs: GcsStorage) -> list[requests.PreparedRequest]:
    """Every request the backend's own session sends from now on."""
    sent: list[requests.PreparedRequest] = []
    gcs._client._http.hooks["response"].append(lambda response, **_: sent.append(response.request))
    return sent


@pytest.fixture(scope="module")
def service_account() -> dict[str, str]:
    """A throwaway key, obviously fake; its token endpoint is set per test."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "type": "service_account",
        "project_id": "testing",
        "private_key_id": "testing",
        "private_key": pem.decode(),
        "client_email": "testing@testing.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "http://127.0.0.1:1/testing-token",
    }


def _encoded(info: dict[str, str]) -> str:
    return base64.b64encode(json.dumps(info).encode()).decode()


# -- configuration ---------------------------------------------------------------------------


def test_url_and_storage_type_open_the_same_bucket(fake_gcs_endpoint: str, bucket: str) -> None:
    by_url = registry.open_location(f"gs://{bucket}/some/prefix/", {"endpoint": fake_gcs_endpoint})
    by_type = registry.open_location(
        None,
        base={
            "STORAGE_TYPE": "google-storage",
            "GOOGLE_STORAGE_BUCKET_NAME": bucket,
            "GOOGLE_STORAGE_ENDPOINT": fake_gcs_endpoint,
            "STORAGE_PREFIX": "some/prefix",
        },
    )
    assert (by_url.storage.describe(), by_url.prefix) == (f"gs://{bucket}", "some/prefix")
    assert (by_type.storage.describe(), by_type.prefix) == (by_url.storage.describe(), by_url.prefix)
    by_url.storage.write("some/prefix/f", b"x")
    assert by_type.storage.read("some/prefix/f") == b"x"


def test_gcs_has_no_region(fake_gcs_endpoint: str) -> None:
    with pytest.raises(BadConfiguration, match="gs has no region setting"):
        registry.open_location("gs://b", {"endpoint": fake_gcs_endpoint, "region": "us-east1"})


def test_storage_emulator_host_is_honoured(fake_gcs_endpoint: str, bucket: str) -> None:
    """The standard variable, often a bare host:port, reaches the emulator anonymously."""
    host = fake_gcs_endpoint.removeprefix("http://")
    base = {
        "STORAGE_TYPE": "google-storage",
        "GOOGLE_STORAGE_BUCKET_NAME": bucket,
        "STORAGE_EMULATOR_HOST": host,
    }
    opened = registry.open_location(None, base=base).storage
    opened.check()
    opened.write("k", b"v")
    assert opened.read("k") == b"v"


def test_bad_settings_are_named_without_their_values(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"STORAGE_TYPE": "google-storage", "GOOGLE_STORAGE_BUCKET_NAME": "b"}
    secret = "bm90LWpzb24tdGVzdGluZw=="  # base64 of "not-json-testing"
    with pytest.raises(BadConfiguration) as caught:
        registry.open_location(None, base={**base, "GOOGLE_STORAGE_SERVICE_ACCOUNT_JSON_BASE64": secret})
    assert "GOOGLE_STORAGE_SERVICE_ACCOUNT_JSON_BASE64" in str(caught.value)
    assert secret not in str(caught.value)
    with pytest.raises(BadConfiguration, match="STORAGE_CA_BUNDLE"):
        registry.open_location(None, base={**base, "STORAGE_CA_BUNDLE": str(tmp_path / "none.pem")})
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(BadConfiguration, match="no Google credentials"):
        registry.open_location(None, base=base)


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "google", None)
    monkeypatch.delitem(sys.modules, "objfs.storage.gcs")
    with pytest.raises(BadConfiguration, match=r"objfs\[gcs\]"):
        registry.backend_for_scheme("gs").load()


# -- check and errors ------------------------------------------------------------------------


def test_check_names_a_missing_bucket(fake_gcs_endpoint: str) -> None:
    with pytest.raises(NotFound) as caught:
        _open(fake_gcs_endpoint, "objfs-no-such-bucket").check()
    assert str(caught.value) == f"bucket 'objfs-no-such-bucket' does not exist at {fake_gcs_endpoint}"


def test_check_fails_fast_when_nothing_answers() -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        _open(endpoint, "objfs-any").check()
    assert time.monotonic() - started < 5
    assert str(caught.value) == f"cannot reach {endpoint}: connection refused"


def test_rejected_credentials_are_permission_denied(
    fake_gcs_endpoint: str, bucket: str, service_account: dict[str, str]
) -> None:
    """fake-gcs-server accepts any token, so the rejection comes from the token endpoint instead:
    the emulator has none, and answers the key's token request with 404, as Google's endpoint
    answers a revoked key with an error."""
    info = {**service_account, "token_uri": f"{fake_gcs_endpoint}/testing-token"}
    opened = _open(fake_gcs_endpoint, bucket, GOOGLE_STORAGE_SERVICE_ACCOUNT_JSON_BASE64=_encoded(info))
    with pytest.raises(PermissionDenied) as caught:
        opened.check()
    assert str(caught.value).startswith(f"access denied to bucket '{bucket}': the credentials were rejected")
    assert service_account["private_key"] not in str(caught.value)


def test_a_lost_condition_carries_the_key(gcs: GcsStorage) -> None:
    gcs.write("k", b"x")
    with pytest.raises(PreconditionFailed) as caught:
        gcs.write("k", b"y", if_none_match=True)
    assert caught.value.key == "k"
    with pytest.raises(PreconditionFailed):
        gcs.write("k", b"y", if_match="0123456789abcdef0123456789abcdef")  # an MD5, not a generation


def test_gcs_digest_and_throttling_answers_are_typed() -> None:
    """GCS's own answers to a wrong md5Hash and to throttling (fake-gcs-server sends neither)."""
    digest = 'Provided MD5 hash "abc" doesn\'t match calculated MD5 hash "def".'
    assert _error_kind(400, "invalid", digest) is IntegrityError
    assert _error_kind(400, "invalid", "Invalid argument.") is not IntegrityError
    assert _error_kind(403, "rateLimitExceeded", "slow down") is Unavailable
    assert _error_kind(429, "rateLimitExceeded", "slow down") is Unavailable
    assert _error_kind(503, "backendError", "") is Unavailable


def test_proxy_setting_carries_every_request(fake_gcs_endpoint: str, bucket: str) -> None:
    """Through a proxy we can cut: once it is cut, the (running) server is unreachable."""
    proxy = CuttableProxy(int(fake_gcs_endpoint.rsplit(":", 1)[1]))
    try:
        opened = _open(fake_gcs_endpoint, bucket, STORAGE_PROXY=proxy.endpoint)
        opened.write("via-proxy", b"x")
        proxy.cut()
        with pytest.raises(Unavailable, match=f"cannot reach {fake_gcs_endpoint}"):
            opened.read("via-proxy")
    finally:
        proxy.close()


# -- what this backend adds ------------------------------------------------------------------


def test_etag_is_the_generation(gcs: GcsStorage, fake_gcs_endpoint: str, bucket: str) -> None:
    written = gcs.write("g", b"data")
    assert written.etag == str(_server_view(fake_gcs_endpoint, bucket).get_blob("g").generation)
    assert gcs.copy("g", "g", metadata={"mode": "0600"}).etag != written.etag


def test_md5_reaches_the_server(gcs: GcsStorage) -> None:
    """GCS rejects an upload whose md5Hash differs from the bytes; the emulator does not check it."""
    sent = _sent_requests(gcs)
    md5 = content_md5(b"data")
    gcs.write("m", b"data", md5=md5)
    uploads = [r for r in sent if r.method == "POST" and "/upload/" in (r.url or "")]
    assert len(uploads) == 1
    assert f'"md5Hash": "{md5}"'.encode() in uploads[0].body


def test_reserved_prefix_is_hidden_and_refused(gcs: GcsStorage) -> None:
    gcs.write("top", b"x")
    upload_id = gcs.create_multipart("dir/obj")
    gcs.upload_part("dir/obj", upload_id, 1, b"x", content_md5(b"x"))
    root = gcs.list("")
    assert ([info.key for info in root.objects], root.prefixes) == (["top"], [])
    assert [info.key for info in gcs.list("", delimiter=None).objects] == ["top"]
    assert gcs.list(".objfs/", delimiter=None).objects == []
    for call in (lambda: gcs.write(".objfs/x", b"x"), lambda: gcs.copy("top", ".objfs/x")):
        with pytest.raises(InvalidKey):
            call()
    gcs.abort_multipart("dir/obj", upload_id)


def test_many_parts_compose_in_rounds(gcs: GcsStorage, fake_gcs_endpoint: str, bucket: str) -> None:
    chunks = [os.urandom(100 + n) for n in range(70)]  # three rounds of compose: 70 -> 3 -> 1
    upload_id = gcs.create_multipart("many", metadata={"mode": "0644"}, content_type="text/x-test")
    parts = [gcs.upload_part("many", upload_id, n, c, content_md5(c)) for n, c in enumerate(chunks, 1)]
    info = gcs.complete_multipart("many", upload_id, parts)
    assert gcs.read("many") == b"".join(chunks)
    assert (info.size, info.metadata, info.content_type) == (
        sum(map(len, chunks)),
        {"mode": "0644"},
        "text/x-test",
    )
    assert gcs.list_multipart("") == []
    assert [blob.name for blob in _server_view(fake_gcs_endpoint, bucket).list_blobs()] == ["many"]


def test_completion_needs_the_upload(gcs: GcsStorage) -> None:
    with pytest.raises(NotFound, match="no multipart upload of k with that id"):
        gcs.complete_multipart("k", "0" * 32, [])
    with pytest.raises(NotFound):
        gcs.upload_part("k", "../escape", 1, b"x", content_md5(b"x"))


def test_storage_class_reaches_the_server(fake_gcs_endpoint: str, bucket: str) -> None:
    """An upload's class is stored by the emulator; it ignores the class in a rewrite's body (GCS
    applies it there), so for copies and completed uploads the rewrite's body is checked."""
    opened = _open(fake_gcs_endpoint, bucket, STORAGE_CLASS="nearline")
    sent = _sent_requests(opened)
    opened.write("w", b"x")
    assert _server_view(fake_gcs_endpoint, bucket).get_blob("w").storage_class == "NEARLINE"
    opened.copy("w", "c")
    upload_id = opened.create_multipart("mp")
    part = opened.upload_part("mp", upload_id, 1, b"x", content_md5(b"x"))
    opened.complete_multipart("mp", upload_id, [part])
    rewrites = [r for r in sent if "/rewriteTo/" in (r.url or "")]
    assert [json.loads(r.body or b"{}").get("storageClass") for r in rewrites] == ["NEARLINE", "NEARLINE"]
    assert [r.url.rsplit("/o/", 1)[1].split("?")[0] for r in rewrites if r.url] == ["c", "mp"]


def test_sse_c_key_is_sent_and_limits_what_is_offered(fake_gcs_endpoint: str, bucket: str) -> None:
    opened = _open(fake_gcs_endpoint, bucket, STORAGE_SSE="sse-c", STORAGE_SSE_C_KEY=SSE_C_KEY)
    sent = _sent_requests(opened)
    opened.write("secret", b"x")
    assert opened.read("secret") == b"x"
    digest = base64.b64encode(hashlib.sha256(base64.b64decode(SSE_C_KEY)).digest()).decode()
    assert [r.headers.get("X-Goog-Encryption-Key-Sha256") for r in sent] == [digest, digest]
    assert not opened.capabilities.multipart
    with pytest.raises(Unsupported):
        opened.create_multipart("big")
    with pytest.raises(Unsupported):
        opened.url("secret")


def test_sse_kms_key_is_sent(fake_gcs_endpoint: str, bucket: str) -> None:
    key = "projects/testing/locations/global/keyRings/testing/cryptoKeys/testing"
    opened = _open(fake_gcs_endpoint, bucket, STORAGE_SSE="sse-kms", STORAGE_SSE_KMS_KEY_ID=key)
    sent = _sent_requests(opened)
    opened.write("k", b"x")
    assert [requests.utils.unquote(r.url or "").count(f"kmsKeyName={key}") for r in sent] == [1]


def test_signed_url_with_a_service_account(
    fake_gcs_endpoint: str, bucket: str, service_account: dict[str, str]
) -> None:
    """Signing is local (the key signs), so it works against the emulator, which ignores the signature."""
    opened = _open(
        fake_gcs_endpoint, bucket, GOOGLE_STORAGE_SERVICE_ACCOUNT_JSON_BASE64=_encoded(service_account)
    )
    _open(fake_gcs_endpoint, bucket).write("dir/u.txt", b"signed")
    url = opened.url("dir/u.txt", expires=60)
    assert url.startswith(f"{fake_gcs_endpoint}/{bucket}/dir/u.txt?")
    assert "X-Goog-Signature=" in url and "X-Goog-Expires=60" in url
    with urlopen(url, timeout=10) as answer:
        assert answer.read() == b"signed"


def test_storage_opened_by_the_registry_is_retry_free(gcs: Storage) -> None:
    """objfs retries every backend itself: the SDK's adapter makes one attempt."""
    assert isinstance(gcs, GcsStorage)
    adapter = gcs._client._http.get_adapter("http://127.0.0.1")
    assert adapter.max_retries.total == 0
