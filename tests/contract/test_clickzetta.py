"""ClickZetta volume specifics, against the in-repo FAKE Lakehouse (servers/clickzetta_fake.py) over moto.

The real connector runs against the fake over HTTP: login, job submission and polling, and the
presigned transfers to moto. What the fake models is in its docstring; where these tests look at the
files behind a volume, they look at the fake's moto buckets with boto3.
"""

from __future__ import annotations

import socket
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from servers.clickzetta_fake import PASSWORD, TABLE_BUCKET, USER_BUCKET
from servers.proxy import CuttableProxy

from objfs.storage import registry
from objfs.storage.base import BadConfiguration, InvalidKey, NotFound, PermissionDenied, Storage, Unavailable
from objfs.storage.clickzetta import ClickzettaStorage

INSTANCE = "testing"


@pytest.fixture
def credentials(clickzetta_endpoint: str) -> dict[str, str]:
    """A new user, so a new, empty user volume."""
    return {
        "CLICKZETTA_VOLUME_SERVICE": clickzetta_endpoint,
        "CLICKZETTA_VOLUME_USERNAME": f"testing-{uuid.uuid4().hex[:12]}",
        "CLICKZETTA_VOLUME_PASSWORD": PASSWORD,
        "CLICKZETTA_VOLUME_INSTANCE": INSTANCE,
    }


@pytest.fixture
def s3(moto_endpoint: str, s3_env: dict[str, str]) -> Any:
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    yield client
    client.close()


def _open(base: dict[str, str], source: str | None = None, **settings: str) -> tuple[Storage, str]:
    values = {**base, **settings} if source else {"STORAGE_TYPE": "clickzetta-volume", **base, **settings}
    location = registry.open_location(source, base=values)
    return location.storage, location.prefix


def _keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- configuration ---------------------------------------------------------------------------


def test_url_and_storage_type_name_the_same_volume(credentials: dict[str, str], s3_bucket: str) -> None:
    endpoint = credentials["CLICKZETTA_VOLUME_SERVICE"]
    location = registry.open_location(
        f"clickzetta://{s3_bucket}/some/prefix/", {"endpoint": endpoint}, credentials
    )
    by_type = _open(
        credentials,
        CLICKZETTA_VOLUME_TYPE="external",
        CLICKZETTA_VOLUME_NAME=s3_bucket,
        STORAGE_PREFIX="some/prefix",
    )
    assert (location.storage.describe(), location.prefix) == (by_type[0].describe(), by_type[1])
    assert by_type == (by_type[0], "some/prefix")
    assert location.storage.describe() == f"clickzetta://{s3_bucket}"

    user = registry.open_location("clickzetta://user/p", base=credentials)
    assert (user.storage.describe(), user.prefix) == ("clickzetta://user", "p")
    assert _open(credentials)[0].describe() == "clickzetta://user"  # the seed's default type
    table = registry.open_location("clickzetta+table://42/p", base=credentials).storage
    assert table.describe() == "clickzetta+table://dataset_42"
    assert registry.open_location("clickzetta+external://user", base=credentials).storage.describe() == (
        "clickzetta://user"
    )


@pytest.mark.parametrize(
    ("source", "settings", "named"),
    [
        ("clickzetta+volume://v", {}, "variants"),
        ("clickzetta://", {}, "needs a volume"),
        (None, {"CLICKZETTA_VOLUME_TYPE": "external"}, "CLICKZETTA_VOLUME_NAME"),
        (None, {"CLICKZETTA_VOLUME_TYPE": "stage"}, "CLICKZETTA_VOLUME_TYPE"),
        (None, {"CLICKZETTA_VOLUME_PASSWORD": ""}, "CLICKZETTA_VOLUME_PASSWORD"),
        (None, {"STORAGE_PROXY": "http://127.0.0.1:3128"}, "STORAGE_PROXY"),
        (None, {"STORAGE_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt"}, "STORAGE_CA_BUNDLE"),
        (None, {"STORAGE_SSE": "sse-s3"}, "STORAGE_SSE"),
        (None, {"STORAGE_CLASS": "COLD"}, "STORAGE_CLASS"),
        (None, {"CLICKZETTA_VOLUME_SERVICE": "ftp://host"}, "CLICKZETTA_VOLUME_SERVICE"),
    ],
)
def test_bad_configuration_names_the_setting(
    credentials: dict[str, str], source: str | None, settings: dict[str, str], named: str
) -> None:
    with pytest.raises(BadConfiguration, match=named) as caught:
        _open(credentials, source, **settings)
    assert PASSWORD not in str(caught.value)


def test_a_missing_connector_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if not installed: the package and every module of it already imported are gone."""
    for name in [name for name in sys.modules if name.split(".")[0] == "clickzetta"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "clickzetta", None)
    monkeypatch.delitem(sys.modules, "objfs.storage.clickzetta", raising=False)
    with pytest.raises(BadConfiguration, match=r"objfs\[clickzetta\]"):
        registry.backend_for_scheme("clickzetta").load()


# -- errors ------------------------------------------------------------------------------------


def test_a_missing_volume_is_not_found(credentials: dict[str, str]) -> None:
    storage = _open(credentials, "clickzetta://objfs-no-such-volume")[0]
    endpoint = credentials["CLICKZETTA_VOLUME_SERVICE"]
    with pytest.raises(NotFound) as caught:
        storage.check()
    assert str(caught.value) == f"volume clickzetta://objfs-no-such-volume does not exist at {endpoint}"
    assert caught.value.request_id  # the job's id
    with pytest.raises(NotFound, match="does not exist"):
        storage.write("k", b"x")


def test_wrong_credentials_are_permission_denied_at_once(credentials: dict[str, str]) -> None:
    """The fake refuses any password but its own, as the service answers a refused login (code != 0);
    one attempt, where the connector's own login would try six times with backoff."""
    wrong = "testing-wrong-password"
    storage = _open(credentials, CLICKZETTA_VOLUME_PASSWORD=wrong)[0]
    started = time.monotonic()
    with pytest.raises(PermissionDenied, match="refused") as caught:
        storage.check()
    assert time.monotonic() - started < 2
    assert wrong not in str(caught.value)


def test_an_unreachable_service_fails_fast(credentials: dict[str, str]) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    storage = _open(credentials, CLICKZETTA_VOLUME_SERVICE=endpoint)[0]
    started = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        storage.check()
    assert time.monotonic() - started < 5
    assert str(caught.value) == f"cannot reach {endpoint}: connection refused"


def test_a_service_lost_after_login_is_unavailable(credentials: dict[str, str]) -> None:
    """Job requests go through the connector, which reports a failure only as text: the error still
    says what happened, from what objfs's session saw."""
    port = int(credentials["CLICKZETTA_VOLUME_SERVICE"].rsplit(":", 1)[1])
    proxy = CuttableProxy(port)
    try:
        storage = _open(credentials, CLICKZETTA_VOLUME_SERVICE=proxy.endpoint)[0]
        storage.write("k", b"x")
        proxy.cut()
        with pytest.raises(Unavailable, match=f"cannot reach {proxy.endpoint}: connection"):
            storage.stat("k")
        proxy.restore()
        assert storage.read("k") == b"x"
    finally:
        proxy.close()


# -- the volume's layout -----------------------------------------------------------------------


def test_user_volume_keeps_keys_under_the_seeds_prefix(credentials: dict[str, str], s3: Any) -> None:
    """Where Dify's ClickZetta storage puts `upload_files/a.txt`, objfs finds it, and the reverse."""
    storage = _open(credentials)[0]
    storage.write("upload_files/a.txt", b"alpha", metadata={"mode": "0644"})
    folder = f"{INSTANCE}/{credentials['CLICKZETTA_VOLUME_USERNAME']}/"
    files = _keys(s3, USER_BUCKET, folder)
    assert f"{folder}dify_km/upload_files/a.txt" in files
    assert [key for key in files if "/.objfs-meta/" in key] == [
        key for key in files if key.startswith(f"{folder}dify_km/.objfs-meta/upload_files/a.txt#")
    ]
    s3.put_object(Bucket=USER_BUCKET, Key=f"{folder}dify_km/by-the-seed.txt", Body=b"seed")
    info = storage.stat("by-the-seed.txt")
    assert (info.size, info.metadata, info.content_type) == (4, {}, None)
    assert info.etag == f"4-{int(info.mtime):x}"
    assert storage.read("by-the-seed.txt") == b"seed"
    assert storage.scan("") == ["by-the-seed.txt", "upload_files/a.txt"]


def test_table_volume_is_the_datasets_table(credentials: dict[str, str], s3: Any) -> None:
    dataset = uuid.uuid4().hex[:8]
    storage = _open(credentials, CLICKZETTA_VOLUME_TYPE="table", CLICKZETTA_VOLUME_NAME=dataset)[0]
    storage.check()
    storage.write("doc.pdf", b"pdf")
    assert _keys(s3, TABLE_BUCKET, f"{INSTANCE}/dataset_{dataset}/doc.pdf") == [
        f"{INSTANCE}/dataset_{dataset}/doc.pdf"
    ]
    same = _open(credentials, CLICKZETTA_VOLUME_TYPE="table", CLICKZETTA_VOLUME_NAME=f"dataset_{dataset}")[0]
    assert same.read("doc.pdf") == b"pdf"


def test_a_rewrite_leaves_one_sidecar(credentials: dict[str, str], s3: Any) -> None:
    storage = _open(credentials)[0]
    for body in (b"1", b"2", b"3"):
        written = storage.write("f", body, metadata={"v": body.decode()})
    folder = f"{INSTANCE}/{credentials['CLICKZETTA_VOLUME_USERNAME']}/dify_km/.objfs-meta/"
    assert _keys(s3, USER_BUCKET, folder) == [f"{folder}f#{written.etag}.json"]
    assert storage.stat("f").metadata == {"v": "3"}
    storage.delete("f")
    assert _keys(s3, USER_BUCKET, folder) == []


def test_a_file_rewritten_by_another_tool_drops_its_stale_attributes(
    credentials: dict[str, str], s3: Any
) -> None:
    storage = _open(credentials)[0]
    written = storage.write("f", b"ours", metadata={"mode": "0600"}, content_type="text/plain")
    time.sleep(1.1)  # the volume's clock has whole seconds
    key = f"{INSTANCE}/{credentials['CLICKZETTA_VOLUME_USERNAME']}/dify_km/f"
    s3.put_object(Bucket=USER_BUCKET, Key=key, Body=b"theirs!")
    info = storage.stat("f")
    assert (info.size, info.metadata, info.content_type) == (7, {}, None)
    assert info.etag != written.etag
    assert storage.list("").objects[0].etag == info.etag


@pytest.mark.parametrize("key", ["it's (1) [a]+b.txt", "ü/ä #x.txt", "a;b %(x)s `q`.txt", "d.e/f$^|?*"])
def test_keys_survive_sql_and_regular_expressions(credentials: dict[str, str], key: str) -> None:
    storage = _open(credentials)[0]
    storage.write(key, b"body", metadata={"k": "v"})
    storage.write(key + "x", b"other")
    assert (storage.read(key), storage.stat(key).metadata) == (b"body", {"k": "v"})
    assert [info.key for info in storage.list("", delimiter=None).objects] == sorted([key, key + "x"])
    storage.delete(key)
    assert not storage.exists(key)
    assert storage.exists(key + "x")


@pytest.mark.parametrize(
    "key", ["", "/abs", "a//b", "../x", "a/./b", ".objfs-meta/x", "back\\slash", "new\nline"]
)
def test_keys_a_volume_cannot_carry_are_refused(credentials: dict[str, str], key: str) -> None:
    storage = _open(credentials)[0]
    with pytest.raises(InvalidKey):
        storage.write(key, b"x")
    with pytest.raises(InvalidKey):
        storage.stat(key)


def test_reserved_folder_is_hidden(credentials: dict[str, str]) -> None:
    storage = _open(credentials)[0]
    storage.write("a", b"1", metadata={"m": "1"})
    page = storage.list("")
    assert ([info.key for info in page.objects], page.prefixes) == (["a"], [])
    assert storage.list(".objfs-meta/", delimiter=None).objects == []


def test_url_is_the_services_presigned_url(credentials: dict[str, str], moto_endpoint: str) -> None:
    storage = _open(credentials)[0]
    assert storage.url("u.txt", expires=60).startswith(f"{moto_endpoint}/{USER_BUCKET}/")


def test_the_class_is_what_the_registry_names() -> None:
    assert registry.backend_for_type("clickzetta-volume").load() is ClickzettaStorage


def test_worker_threads_share_one_connection(credentials: dict[str, str]) -> None:
    """The connector keeps its token and headers in module globals; one user's threads are safe."""
    storage = _open(credentials)[0]

    def round_trip(number: int) -> bytes:
        body = f"body {number}".encode() * (number + 1)
        storage.write(f"t/{number}", body, metadata={"n": str(number)})
        assert storage.stat(f"t/{number}").metadata == {"n": str(number)}
        return storage.read(f"t/{number}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        bodies = list(pool.map(round_trip, range(16)))
    assert bodies == [f"body {n}".encode() * (n + 1) for n in range(16)]
    assert len(storage.list("t/").objects) == 16
