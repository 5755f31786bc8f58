"""Huawei OBS specifics, against moto's S3 app (see backends/obs.py; the generic contract runs too).

The SDK signs v2 on loopback (an IP endpoint forces path-style), so these cover OBS's AWS-compatible
dialect; v4 is checked where moto needs it (its signature check) and once end to end.
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator

import backends
import boto3
import pytest
from obs.model import GetResult
from servers.canned import closed_port, opened
from servers.moto import start_moto

from objfs.storage import registry
from objfs.storage.base import (
    Archived,
    BadConfiguration,
    IntegrityError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    Storage,
    StorageError,
    Unavailable,
)
from objfs.storage.obs import ObsStorage

MIB = 1024 * 1024
CREDENTIALS = {"HUAWEI_OBS_ACCESS_KEY": "testing", "HUAWEI_OBS_SECRET_KEY": "testing"}
SSE_C_KEY = "dGVzdGluZy10ZXN0aW5nLXRlc3RpbmctdGVzdGluZyE="  # base64 of a fake 32-byte key


@pytest.fixture
def obs_settings(request: pytest.FixtureRequest) -> dict[str, str]:
    return backends.settings("obs", request)


@pytest.fixture
def obs(obs_settings: dict[str, str]) -> Iterator[ObsStorage]:
    yield from opened(obs_settings, ObsStorage)


def _storage(server: str, bucket: str = "objfs-any", **extra: str) -> Storage:
    base = {"STORAGE_TYPE": "huawei-obs", "HUAWEI_OBS_BUCKET_NAME": bucket, "HUAWEI_OBS_SERVER": server}
    return registry.open_location(None, base={**base, **CREDENTIALS, **extra}).storage


# -- configuration -----------------------------------------------------------------------------


def test_url_and_storage_type_open_the_same_bucket(obs_settings: dict[str, str]) -> None:
    bucket, server = obs_settings["HUAWEI_OBS_BUCKET_NAME"], obs_settings["HUAWEI_OBS_SERVER"]
    by_url = registry.open_location(
        f"obs://{bucket}/some/prefix/", {"endpoint": server, "region": "us-east-1"}, base=CREDENTIALS
    )
    by_type = registry.open_location(None, base={**obs_settings, "STORAGE_PREFIX": "some/prefix"})
    assert (by_url.storage.describe(), by_url.prefix) == (f"obs://{bucket}", "some/prefix")
    assert (by_type.storage.describe(), by_type.prefix) == (f"obs://{bucket}", "some/prefix")
    by_url.storage.write("some/prefix/f", b"same")
    assert by_type.storage.read("some/prefix/f") == b"same"
    with pytest.raises(BadConfiguration):
        registry.open_location("obs:///prefix", {"endpoint": server})


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"STORAGE_SSE": "sse-s3"}, "STORAGE_SSE=sse-s3 is not supported by huawei-obs"),
        ({"STORAGE_SSE": "sse-c", "STORAGE_SSE_C_KEY": "c2hvcnQ="}, "STORAGE_SSE_C_KEY must be"),
        ({"STORAGE_CLASS": "FROZEN"}, "STORAGE_CLASS must be one of"),
        ({"HUAWEI_OBS_SIGNATURE": "v3"}, "HUAWEI_OBS_SIGNATURE must be one of obs, v2, v4"),
        ({"STORAGE_PROXY": "https://proxy:3128"}, "STORAGE_PROXY must be an http://host:port proxy URL"),
        ({"STORAGE_CA_BUNDLE": "/nonexistent/ca.pem"}, "STORAGE_CA_BUNDLE is not a file"),
        ({"HUAWEI_OBS_SECRET_KEY": ""}, "must be set together"),
    ],
)
def test_settings_it_cannot_honour_are_refused(extra: dict[str, str], message: str) -> None:
    with pytest.raises(BadConfiguration, match=message) as caught:
        _storage("http://127.0.0.1:1", **extra)
    assert "testing" not in str(caught.value)


def test_missing_server_is_named() -> None:
    base = {"STORAGE_TYPE": "huawei-obs", "HUAWEI_OBS_BUCKET_NAME": "b", **CREDENTIALS}
    with pytest.raises(BadConfiguration, match="HUAWEI_OBS_SERVER is not set"):
        registry.open_location(None, base=base)


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "obs", None)
    monkeypatch.delitem(sys.modules, "objfs.storage.obs")
    with pytest.raises(BadConfiguration, match=r"pip install 'objfs\[obs\]'"):
        registry.backend_for_scheme("obs").load()


def test_https_checks_certificates_and_host_names() -> None:
    """The SDK alone would trust any certificate for any name."""
    storage = _storage("https://obs.example.invalid")
    assert isinstance(storage, ObsStorage)
    context = storage._client.context
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert context.cert_store_stats()["x509_ca"] > 0


# -- check() -----------------------------------------------------------------------------------


def test_check_names_a_missing_bucket(dialect_endpoint: str) -> None:
    storage = _storage(dialect_endpoint, "objfs-no-such-bucket")
    with pytest.raises(NotFound) as caught:
        storage.check()
    assert str(caught.value) == f"bucket 'objfs-no-such-bucket' does not exist at {dialect_endpoint}"
    assert caught.value.request_id


def test_check_fails_fast_when_nothing_answers() -> None:
    server = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        _storage(server).check()
    assert time.monotonic() - started < 5
    assert str(caught.value) == f"cannot reach {server}: connection refused"


@pytest.fixture(scope="module")
def moto_with_auth() -> Iterator[str]:
    server = start_moto(auth=True)
    try:
        yield server.endpoint
    finally:
        server.stop()


def test_check_reports_rejected_credentials(moto_with_auth: str) -> None:
    """moto checks signatures only for v4 (a v2 signature makes it fail with 500), so sign v4 here."""
    storage = _storage(
        moto_with_auth,
        HUAWEI_OBS_SIGNATURE="v4",
        HUAWEI_OBS_REGION="us-east-1",
        HUAWEI_OBS_ACCESS_KEY="AKIAOBJFSBOGUSKEY000",
        HUAWEI_OBS_SECRET_KEY="testing-bogus-secret",
    )
    with pytest.raises(PermissionDenied) as caught:
        storage.check()
    expected = "access denied to bucket 'objfs-any': the credentials were rejected (InvalidAccessKeyId)"
    assert str(caught.value) == expected


# -- behaviour ---------------------------------------------------------------------------------


def test_metadata_named_like_service_headers_round_trips(obs: ObsStorage) -> None:
    """The SDK strips `x-amz-` from `x-amz-request-id` as it strips `x-amz-meta-` from metadata."""
    metadata = {"request-id": "mine", "id-2": "also mine", "mode": "0644", "objfs-test": "v 1/é%41"}
    obs.write("m", b"x", metadata=metadata)
    assert obs.stat("m").metadata == metadata
    obs.write("plain", b"x")
    assert obs.stat("plain").metadata == {}


def test_errors_carry_key_and_request_id(obs: ObsStorage) -> None:
    with pytest.raises(NotFound) as caught:
        obs.read("absent")
    assert (str(caught.value), caught.value.key) == ("no such key: absent", "absent")
    assert caught.value.request_id


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("BadDigest", 400, IntegrityError),
        ("InvalidDigest", 400, IntegrityError),
        ("InvalidObjectState", 403, Archived),
        ("AccessDenied", 403, PermissionDenied),
        (None, 403, PermissionDenied),
        ("PreconditionFailed", 412, PreconditionFailed),
        ("SlowDown", 503, Unavailable),
        ("RequestTimeout", 400, Unavailable),
        ("InternalError", 500, Unavailable),
        (None, 429, Unavailable),
        ("NoSuchKey", 404, NotFound),
        ("InvalidArgument", 400, StorageError),
    ],
)
def test_service_answers_become_typed_errors(
    obs: ObsStorage, code: str | None, status: int, kind: type[StorageError]
) -> None:
    """Answers moto never gives (it ignores Content-MD5, has no archive classes), as the SDK returns them."""
    answer = GetResult(code=code, message="injected", status=status, reason="R", requestId="R1")
    with pytest.raises(kind) as caught:
        obs._checked(answer, "k")
    assert type(caught.value) is kind
    assert (caught.value.key, caught.value.request_id) == ("k", "R1")
    assert "\n" not in str(caught.value)


def test_listing_times_agree_with_stat_in_any_time_zone(
    obs: ObsStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK turns listed UTC times into local wall-clock text; the epoch must come back whole."""
    obs.write("t", b"x")
    stat = obs.stat("t").mtime
    try:
        for zone in ("America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "UTC"):
            monkeypatch.setenv("TZ", zone)
            time.tzset()
            (listed,) = obs.list("t").objects
            assert abs(listed.mtime - stat) < 1, zone
            assert abs(obs.copy("t", f"copy-{zone}").mtime - stat) < 60, zone
    finally:
        monkeypatch.undo()
        time.tzset()


def test_sse_kms_and_storage_class_reach_the_server(obs_settings: dict[str, str]) -> None:
    extra = {"STORAGE_SSE": "sse-kms", "STORAGE_SSE_KMS_KEY_ID": "objfs-test-key", "STORAGE_CLASS": "warm"}
    for storage in opened(obs_settings, ObsStorage, **extra):
        storage.write("enc", b"secret", metadata={"mode": "0600"})
        storage.copy("enc", "enc-copy")
        upload_id = storage.create_multipart("enc-mp")
        storage.abort_multipart("enc-mp", upload_id)
    client = boto3.client(
        "s3",
        endpoint_url=obs_settings["HUAWEI_OBS_SERVER"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for key in ("enc", "enc-copy"):
        head = client.head_object(Bucket=obs_settings["HUAWEI_OBS_BUCKET_NAME"], Key=key)
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", "objfs-test-key")
        assert head["StorageClass"] == "STANDARD_IA"  # OBS's WARM, as the v2 dialect names it
    client.close()


def test_sse_c_round_trips_and_copies(obs_settings: dict[str, str]) -> None:
    for storage in opened(obs_settings, ObsStorage, STORAGE_SSE="sse-c", STORAGE_SSE_C_KEY=SSE_C_KEY):
        storage.write("c", b"customer keyed", metadata={"mode": "0600"}, content_type="text/plain")
        assert storage.read("c", 9) == b"keyed"
        copied = storage.copy("c", "c2", metadata={"mode": "0644"})
        assert storage.read("c2") == b"customer keyed"
        assert storage.stat("c2").metadata == copied.metadata == {"mode": "0644"}


def test_v4_signature_round_trip(obs_settings: dict[str, str]) -> None:
    for storage in opened(obs_settings, ObsStorage, HUAWEI_OBS_SIGNATURE="v4", HUAWEI_OBS_REGION="us-east-1"):
        assert storage._client.signature == "v4"
        storage.check()
        storage.write("v4/a", b"four", metadata={"mode": "0640"})
        assert storage.stat("v4/a").metadata == {"mode": "0640"}
        assert [info.key for info in storage.list("v4/").objects] == ["v4/a"]
        storage.copy("v4/a", "v4/b")
        assert storage.read("v4/b", 1, 2) == b"ou"


def test_large_copy_goes_in_parts(obs: ObsStorage) -> None:
    """The single-copy limit is lowered so 13 MiB takes the multipart path: parts of 5, 5 and 3 MiB."""
    obs.copy_limit = 6 * MIB
    obs.copy_part_size = 5 * MIB
    data = os.urandom(13 * MIB)
    obs.write("big", data, metadata={"mode": "0600"}, content_type="application/x-test")
    info = obs.copy("big", "big-copy")
    assert info.etag.endswith("-3")
    assert obs.read("big-copy") == data
    stat = obs.stat("big-copy")
    assert (stat.etag, stat.metadata, stat.content_type) == (
        info.etag,
        {"mode": "0600"},
        "application/x-test",
    )
    assert obs.list_multipart("") == []


def test_failed_large_copy_aborts_its_upload(obs: ObsStorage) -> None:
    """The source vanishes after the stat: the first part fails, and no upload is left behind."""
    obs.copy_part_size = 5 * MIB
    obs.write("big", os.urandom(7 * MIB))
    source = obs.stat("big")
    obs.delete("big")
    with pytest.raises(NotFound):
        obs._copy_in_parts(source, "dst", None, None)
    assert obs.list_multipart("") == []
    assert not obs.exists("dst")


# -- proxy -------------------------------------------------------------------------------------


class TunnelProxy:
    """A loopback HTTP proxy that only tunnels (CONNECT), the way the OBS SDK uses a proxy."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            self.requests.append(head)
            host, _, port = head.split(b" ", 2)[1].decode().rpartition(":")
            with socket.create_connection((host, int(port))) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()
                _pump(client, upstream)


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
        target.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def test_proxy_carries_every_request(obs_settings: dict[str, str]) -> None:
    proxy = TunnelProxy()
    try:
        extra = {"STORAGE_PROXY": f"http://objfs:testing%21@127.0.0.1:{proxy.port}"}
        for storage in opened(obs_settings, ObsStorage, **extra):
            storage.write("via-proxy", b"tunnelled")
            assert storage.read("via-proxy") == b"tunnelled"
    finally:
        proxy.close()
    assert len(proxy.requests) == 2
    assert all(request.startswith(b"CONNECT 127.0.0.1:") for request in proxy.requests)
    assert b"Proxy-Authorization: Basic b2JqZnM6dGVzdGluZyE=" in proxy.requests[0]
