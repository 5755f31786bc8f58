"""OpenDAL-specific promises: settings and URL forms, error mapping, sidecars, reads that release the GIL."""

from __future__ import annotations

import itertools
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from servers.moto import start_moto
from servers.process import free_port, start_server

from objfs.storage import registry
from objfs.storage.base import (
    BadConfiguration,
    InvalidKey,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    Unavailable,
    Unsupported,
)
from objfs.storage.opendal import OpendalStorage, operator_options
from objfs.storage.settings import Settings

REGION = "us-east-1"
CREDENTIALS = {"OPENDAL_S3_ACCESS_KEY_ID": "testing", "OPENDAL_S3_SECRET_ACCESS_KEY": "testing"}
SLOW_SECONDS = 1.5
SLOW_SERVER = f"""
import http.server, sys, time
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/slow"):
            time.sleep({SLOW_SECONDS})
        body = b"x" * 65536
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def _s3_settings(endpoint: str, bucket: str, **extra: str) -> dict[str, str]:
    return {
        "STORAGE_TYPE": "opendal",
        "OPENDAL_SCHEME": "s3",
        "OPENDAL_S3_ENDPOINT": endpoint,
        "OPENDAL_S3_REGION": REGION,
        "OPENDAL_S3_BUCKET": bucket,
        **CREDENTIALS,
        **extra,
    }


@pytest.fixture
def fs_storage(tmp_path: Path) -> OpendalStorage:
    storage = registry.open_location(f"opendal+fs://{tmp_path}").storage
    assert isinstance(storage, OpendalStorage)
    return storage


@pytest.fixture(scope="module")
def slow_server() -> Iterator[str]:
    """An HTTP server that takes SLOW_SECONDS to answer /slow, in its own process (its own GIL)."""
    server = start_server([sys.executable, "-c", SLOW_SERVER, "{port}"], "slow-http")
    try:
        yield server.endpoint
    finally:
        server.stop()


# -- settings and URLs ----------------------------------------------------------------------


def test_every_opendal_scheme_option_becomes_an_operator_option() -> None:
    settings = Settings(
        {
            "OPENDAL_S3_BUCKET": "b",
            "OPENDAL_S3_ENABLE_VIRTUAL_HOST_STYLE": "true",
            "OPENDAL_S3_ENDPOINT": "http://configured",
            "OPENDAL_FS_ROOT": "/elsewhere",
            "OPENDAL_HDFS_NATIVE_NAME_NODE": "nn",
            "OPENDAL_ENDPOINT": "http://from-the-flag",
        }
    )
    assert operator_options(settings, "s3") == {
        "bucket": "b",
        "enable_virtual_host_style": "true",
        "endpoint": "http://from-the-flag",
    }
    assert operator_options(settings, "hdfs-native")["name_node"] == "nn"
    assert operator_options(Settings({"OPENDAL_FS_ROOT": "storage"}), "fs") == {"root": "storage"}


def test_s3_url_and_storage_type_name_the_same_bucket(moto_endpoint: str, s3_bucket: str) -> None:
    by_url = registry.open_location(
        f"opendal+s3://{s3_bucket}/some/prefix/",
        {"endpoint": moto_endpoint, "region": REGION},
        base=CREDENTIALS,
    )
    by_type = registry.open_location(
        None, base=_s3_settings(moto_endpoint, s3_bucket, STORAGE_PREFIX="some/prefix")
    )
    assert by_url.prefix == by_type.prefix == "some/prefix"
    assert by_url.storage.describe() == by_type.storage.describe() == f"opendal+s3://{s3_bucket}"
    by_url.storage.write("some/prefix/k", b"shared")
    assert by_type.storage.read("some/prefix/k") == b"shared"


def test_fs_and_memory_urls(tmp_path: Path) -> None:
    fs = registry.open_location(f"opendal+fs://{tmp_path}")
    assert (fs.storage.describe(), fs.prefix) == (f"opendal+fs://{tmp_path}", "")
    by_type = registry.open_location(None, base={"STORAGE_TYPE": "opendal", "OPENDAL_FS_ROOT": str(tmp_path)})
    assert by_type.storage.describe() == fs.storage.describe()  # fs is the seed's default scheme
    memory = registry.open_location("opendal+memory:///inside")
    assert (memory.storage.describe(), memory.prefix) == ("opendal+memory://", "inside")
    for bad in ("opendal://x", "opendal+fs://host/x", "opendal+s3:///prefix", "opendal+memory://bucket"):
        with pytest.raises(BadConfiguration):
            registry.open_location(bad)
    with pytest.raises(BadConfiguration, match="opendal has no service 'nosuch'"):
        registry.open_location("opendal+nosuch:///")
    with pytest.raises(BadConfiguration, match="OPENDAL_FS_ROOT is not set"):
        registry.open_location(None, base={"STORAGE_TYPE": "opendal"})


def test_generic_settings_reach_s3_or_are_refused(moto_endpoint: str, s3_bucket: str, tmp_path: Path) -> None:
    settings = _s3_settings(moto_endpoint, s3_bucket, STORAGE_SSE="sse-s3", STORAGE_CLASS="STANDARD_IA")
    registry.open_location(None, base=settings).storage.write("enc", b"secret")
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION)
    head = client.head_object(Bucket=s3_bucket, Key="enc")
    assert (head["ServerSideEncryption"], head["StorageClass"]) == ("AES256", "STANDARD_IA")
    with pytest.raises(BadConfiguration, match="STORAGE_SSE is not supported by opendal\\+fs"):
        registry.open_location(f"opendal+fs://{tmp_path}", {"sse": "sse-s3"})
    with pytest.raises(BadConfiguration, match="STORAGE_PROXY"):
        registry.open_location(f"opendal+fs://{tmp_path}", {"proxy": "http://127.0.0.1:1"})


def test_a_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opendal", None)
    monkeypatch.delitem(sys.modules, "objfs.storage.opendal")
    with pytest.raises(BadConfiguration, match=r"objfs\[opendal\]"):
        registry.backend_for_scheme("opendal").load()


# -- errors ---------------------------------------------------------------------------------


def test_check_names_a_missing_bucket(moto_endpoint: str, s3_env: dict[str, str]) -> None:
    storage = registry.open_location(None, base=_s3_settings(moto_endpoint, "objfs-no-such-bucket")).storage
    with pytest.raises(NotFound) as caught:
        storage.check()
    assert str(caught.value) == f"bucket 'objfs-no-such-bucket' does not exist at {moto_endpoint}"
    assert caught.value.request_id


def test_check_reports_rejected_credentials() -> None:
    server = start_moto(auth=True)
    try:
        storage = registry.open_location(None, base=_s3_settings(server.endpoint, "objfs-any")).storage
        with pytest.raises(PermissionDenied) as caught:
            storage.check()
    finally:
        server.stop()
    expected = "access denied to opendal+s3://objfs-any: the credentials were rejected (InvalidAccessKeyId)"
    assert str(caught.value) == expected
    assert "testing" not in str(caught.value)


def test_check_fails_fast_when_nothing_answers() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    storage = registry.open_location(None, base=_s3_settings(endpoint, "objfs-any")).storage
    started = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        storage.check()
    assert time.monotonic() - started < 5
    assert str(caught.value) == f"cannot reach {endpoint}: connection refused"


def test_s3_conditions_are_the_services_own(moto_endpoint: str, s3_bucket: str) -> None:
    storage = registry.open_location(None, base=_s3_settings(moto_endpoint, s3_bucket)).storage
    assert storage.capabilities.conditional_write
    first = storage.write("k", b"x")
    with pytest.raises(PreconditionFailed) as caught:
        storage.write("k", b"y", if_none_match=True)
    assert (caught.value.key, bool(caught.value.request_id)) == ("k", True)
    with pytest.raises(PreconditionFailed):
        storage.write("absent", b"y", if_match=first.etag)
    assert storage.stat("k").etag == first.etag == first.etag.strip('"')


# -- what the services lack, and how the backend fills it -------------------------------------


def test_capabilities_follow_the_service(
    fs_storage: OpendalStorage, moto_endpoint: str, s3_bucket: str
) -> None:
    memory = registry.open_location("opendal+memory://").storage
    s3 = registry.open_location(None, base=_s3_settings(moto_endpoint, s3_bucket)).storage
    assert (memory.capabilities.copy, fs_storage.capabilities.copy, s3.capabilities.copy) == (
        False,
        True,
        True,
    )
    assert not fs_storage.capabilities.conditional_write and not memory.capabilities.conditional_write
    assert not any(storage.capabilities.multipart for storage in (memory, fs_storage, s3))
    with pytest.raises(Unsupported):
        s3.create_multipart("k")
    assert s3.list_multipart() == []


def test_reserved_sidecars_stay_out_of_sight(fs_storage: OpendalStorage, tmp_path: Path) -> None:
    fs_storage.write("a.txt", b"text", metadata={"objfs-test": "v1"}, content_type="text/plain")
    fs_storage.write("marker/", b"", metadata={"mode": "0755"})
    assert (tmp_path / ".objfs" / "attrs" / "a.txt.json").exists()
    page = fs_storage.list("")
    assert ([info.key for info in page.objects], page.prefixes) == (["a.txt"], ["marker/"])
    assert [info.key for info in fs_storage.list("", delimiter=None).objects] == ["a.txt", "marker/"]
    for key in (".objfs/attrs/a.txt.json", "a//b", "/a", "a/../b"):
        with pytest.raises(InvalidKey):
            fs_storage.stat(key)


def test_a_sidecar_of_an_older_version_is_ignored(fs_storage: OpendalStorage, tmp_path: Path) -> None:
    """Another tool rewriting the file leaves our sidecar behind; its content type must not stick."""
    fs_storage.write("doc", b"v1", content_type="text/plain")
    time.sleep(0.01)
    (tmp_path / "doc").write_bytes(b"version 2")
    info = fs_storage.stat("doc")
    assert (info.size, info.content_type) == (9, None)


def test_memory_gets_etag_and_mtime_from_its_sidecar() -> None:
    storage = registry.open_location("opendal+memory://").storage
    before = time.time()
    first = storage.write("k", b"same")
    second = storage.write("k", b"same", metadata={"mode": "0600"})
    assert first.etag != second.etag
    listed = storage.list("").objects[0]
    assert (listed.etag, listed.size) == (second.etag, 4)
    assert before <= listed.mtime <= time.time()
    assert storage.stat("k").metadata == {"mode": "0600"}


def test_fs_delete_prunes_empty_folders_but_keeps_markers(fs_storage: OpendalStorage, tmp_path: Path) -> None:
    fs_storage.write("x/y/z.txt", b"1")
    fs_storage.write("keep/", b"")
    fs_storage.write("keep/inner/f", b"2")
    fs_storage.delete("x/y/z.txt")
    assert not (tmp_path / "x").exists()
    fs_storage.delete("keep/inner/f")
    assert (tmp_path / "keep").is_dir() and not (tmp_path / "keep" / "inner").exists()
    assert fs_storage.list("").prefixes == ["keep/"]
    fs_storage.delete("keep/")
    assert not (tmp_path / "keep").exists()


def test_fs_url_is_the_file(fs_storage: OpendalStorage, tmp_path: Path) -> None:
    fs_storage.write("u v.txt", b"x")
    assert fs_storage.url("u v.txt") == (tmp_path / "u v.txt").as_uri()


# -- the GIL ----------------------------------------------------------------------------------


def test_a_read_releases_the_gil(slow_server: str) -> None:
    """opendal >= 0.47.12 releases the GIL while it waits (older bindings held it): a pure-Python thread
    keeps running while another thread waits SLOW_SECONDS for an answer. Held, the spinner would stall
    for the whole wait; the bound leaves a loaded 2-core machine plenty of room for scheduling gaps."""
    storage = registry.open_location(
        None, base={"STORAGE_TYPE": "opendal", "OPENDAL_SCHEME": "http", "OPENDAL_HTTP_ENDPOINT": slow_server}
    ).storage
    ticks: list[float] = []
    stop = threading.Event()

    def spin() -> None:
        count = 0
        while not stop.is_set():
            count += 1
            if count % 1000 == 0:
                ticks.append(time.monotonic())

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        started = time.monotonic()
        assert len(storage.read(f"slow-{uuid.uuid4().hex}")) == 65536
        ended = time.monotonic()
    finally:
        stop.set()
        spinner.join()
    assert ended - started >= SLOW_SECONDS * 0.9
    during = [started, *(tick for tick in ticks if started <= tick <= ended), ended]
    longest_stall = max(later - earlier for earlier, later in itertools.pairwise(during))
    assert longest_stall < SLOW_SECONDS / 3, (
        f"a pure-Python thread stalled {longest_stall:.2f} s during a read"
    )
