"""The storage contract: what every backend promises the layers above, checked on each backend.

The memory backend is the reference; local and S3 (a real moto server over HTTP) must behave the
same wherever a user could tell the difference. Backend-specific promises follow at the end.
"""

from __future__ import annotations

import errno
import io
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.request import build_opener

import backends
import pytest
from botocore.stub import Stubber
from servers.moto import start_moto

from objfs.storage import registry
from objfs.storage.base import (
    BadConfiguration,
    IntegrityError,
    InvalidKey,
    ListPage,
    NoSpace,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    Storage,
    Unavailable,
    Unsupported,
    UploadedPart,
    content_md5,
)
from objfs.storage.local import LocalStorage
from objfs.storage.memory import MemoryStorage
from objfs.storage.s3 import NO_CREDENTIALS, S3Connection, S3Storage

MIB = 1024 * 1024
REGION = "us-east-1"


def _bucket(kind: str, request: pytest.FixtureRequest) -> Iterator[Storage]:
    """A fresh, empty bucket of `kind`, opened from the seed's variables as a mount would."""
    opened = backends.open_bucket(kind, request)
    yield opened
    opened.close()


@pytest.fixture(params=backends.names())
def storage(request: pytest.FixtureRequest) -> Iterator[Storage]:
    yield from _bucket(request.param, request)


@pytest.fixture
def s3_storage(request: pytest.FixtureRequest) -> Iterator[Storage]:
    yield from _bucket("s3", request)


@pytest.fixture
def local_storage(request: pytest.FixtureRequest) -> Iterator[Storage]:
    yield from _bucket("local", request)


def _keys(page: ListPage) -> list[str]:
    return [info.key for info in page.objects]


def _all_pages(storage: Storage, prefix: str, delimiter: str | None, limit: int = 2) -> list[str]:
    """Every name (object key or sub-prefix) in the order the pages gave them."""
    names: list[str] = []
    token = None
    for _ in range(50):
        page = storage.list(prefix, delimiter=delimiter, token=token, limit=limit)
        assert len(page.objects) + len(page.prefixes) <= limit
        names += _keys(page) + page.prefixes
        token = page.next_token
        if token is None:
            return names
    raise AssertionError(f"listing {prefix!r} never ended: {names}")


# -- objects ---------------------------------------------------------------------------------


def test_write_then_stat_round_trips_attributes(storage: Storage) -> None:
    metadata = {"mode": "0644", "uid": "1000"}
    written = storage.write("docs/a.txt", b"hello", metadata=metadata, content_type="text/plain")
    info = storage.stat("docs/a.txt")
    assert (info.key, info.size, info.content_type, info.metadata) == (
        "docs/a.txt",
        5,
        "text/plain",
        metadata,
    )
    assert info.etag and info.etag == written.etag
    assert abs(info.mtime - time.time()) < 60

    rewritten = storage.write("docs/a.txt", b"hello again")
    assert rewritten.etag != written.etag
    assert storage.stat("docs/a.txt").etag == rewritten.etag
    assert storage.stat("docs/a.txt").metadata == {}
    assert storage.read("docs/a.txt") == b"hello again"


def test_empty_object_is_an_object(storage: Storage) -> None:
    storage.write("empty", b"")
    assert storage.stat("empty").size == 0
    assert storage.read("empty") == b""
    assert storage.read("empty", 0, 10) == b""
    assert b"".join(storage.read_stream("empty")) == b""
    assert _keys(storage.list("")) == ["empty"]


def test_ranged_read_returns_fewer_bytes_at_the_end_and_none_past_it(storage: Storage) -> None:
    body = bytes(range(256)) * 4
    storage.write("r", body)
    assert storage.read("r", 10, 20) == body[10:30]
    assert storage.read("r", 1000, 100) == body[1000:]
    assert storage.read("r", 1024, 10) == b""
    assert storage.read("r", 5000, 10) == b""
    assert storage.read("r", 5, 0) == b""
    assert storage.read("r", 100) == body[100:]
    assert storage.read("r") == body


def test_read_stream_returns_the_object_from_an_offset(storage: Storage) -> None:
    body = os.urandom(3 * MIB + 123)
    storage.write("big", body)
    assert b"".join(storage.read_stream("big")) == body
    assert b"".join(storage.read_stream("big", len(body) - 10)) == body[-10:]
    assert b"".join(storage.read_stream("big", len(body) + 10)) == b""


def test_write_accepts_a_file_object(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(b"abc" * 1000)
    with source.open("rb") as data:
        assert storage.write("from-file", data).size == 3000
    assert storage.read("from-file") == b"abc" * 1000
    assert storage.write("from-buffer", io.BytesIO(b"buffered")).size == 8
    assert storage.read("from-buffer") == b"buffered"


def test_missing_key_is_not_found(storage: Storage) -> None:
    storage.write("dir/inside", b"x")
    for key in ("nope", "dir"):
        for call in (storage.stat, storage.read, lambda k: b"".join(storage.read_stream(k))):
            with pytest.raises(NotFound) as caught:
                call(key)
            assert caught.value.key == key


def test_delete_removes_and_tolerates_absent_keys(storage: Storage) -> None:
    storage.write("gone", b"x")
    storage.delete("gone")
    assert not storage.exists("gone")
    storage.delete("gone")
    storage.delete("never/was")
    assert storage.list("") == ListPage()


# -- listing ---------------------------------------------------------------------------------


def test_list_rolls_up_sub_prefixes_and_shows_markers(storage: Storage) -> None:
    for key in ("a/b/c.txt", "a/d.txt", "top.txt"):
        storage.write(key, b"x")
    page = storage.list("a/")
    assert (_keys(page), page.prefixes, page.next_token) == (["a/d.txt"], ["a/b/"], None)
    top = storage.list("")
    assert (_keys(top), top.prefixes) == (["top.txt"], ["a/"])

    storage.write("a/", b"")
    assert _keys(storage.list("a/")) == ["a/", "a/d.txt"]
    assert storage.list("").prefixes == ["a/"]
    listed = storage.list("a/").objects[1]
    assert (listed.size, listed.etag) == (1, storage.stat("a/d.txt").etag)
    assert listed.mtime > 0


def test_a_lone_marker_is_a_prefix_and_an_object(storage: Storage) -> None:
    storage.write("folder/", b"", metadata={"mode": "0755"})
    assert storage.list("").prefixes == ["folder/"]
    assert _keys(storage.list("folder/")) == ["folder/"]
    assert (storage.stat("folder/").size, storage.stat("folder/").metadata) == (0, {"mode": "0755"})


def test_list_orders_keys_as_strings_not_as_folders(storage: Storage) -> None:
    for key in ("t/x/1", "t/2", "t/x/y/3", "t/x-a", "t/x0", "u"):
        storage.write(key, b"1", metadata={"k": "v"})
    flat = storage.list("t/", delimiter=None)
    assert _keys(flat) == ["t/2", "t/x-a", "t/x/1", "t/x/y/3", "t/x0"]
    assert flat.prefixes == []
    expected = {"k": "v"} if storage.capabilities.metadata_in_listing else None
    assert all(info.metadata == expected for info in flat.objects)

    delimited = storage.list("t/x")
    assert (_keys(delimited), delimited.prefixes) == (["t/x-a", "t/x0"], ["t/x/"])


def test_pages_never_skip_or_repeat(storage: Storage) -> None:
    keys = ["p/1", "p/2/x", "p/2/y", "p/3", "p/4/z", "p/5", "p/6", "p/7/q"]
    for key in keys:
        storage.write(key, b"x")
    delimited = _all_pages(storage, "p/", "/")
    assert sorted(delimited) == ["p/1", "p/2/", "p/3", "p/4/", "p/5", "p/6", "p/7/"]
    assert len(delimited) == 7
    flat = _all_pages(storage, "p/", None)
    assert flat == keys


# -- copy ------------------------------------------------------------------------------------


def test_copy_keeps_data_and_metadata(storage: Storage) -> None:
    storage.write("src", b"payload", metadata={"mode": "0600"}, content_type="text/plain")
    copied = storage.copy("src", "dir/dst")
    info = storage.stat("dir/dst")
    assert (info.size, info.metadata, info.content_type) == (7, {"mode": "0600"}, "text/plain")
    assert copied.etag == info.etag
    assert storage.read("dir/dst") == b"payload"
    assert storage.read("src") == b"payload"


def test_copy_onto_itself_replaces_metadata(storage: Storage) -> None:
    storage.write("f", b"data", metadata={"mode": "0644"}, content_type="text/plain")
    storage.copy("f", "f", metadata={"mode": "0600"})
    info = storage.stat("f")
    assert (info.metadata, info.content_type) == ({"mode": "0600"}, "text/plain")
    assert storage.read("f") == b"data"


def test_copy_of_a_missing_key_is_not_found(storage: Storage) -> None:
    with pytest.raises(NotFound):
        storage.copy("nope", "dst")


# -- conditional writes ----------------------------------------------------------------------


def test_conditional_writes(storage: Storage) -> None:
    first = storage.write("c", b"1")
    with pytest.raises(PreconditionFailed):
        storage.write("c", b"2", if_none_match=True)
    assert storage.write("fresh", b"1", if_none_match=True).etag

    second = storage.write("c", b"2", if_match=first.etag)
    assert second.etag != first.etag
    with pytest.raises(PreconditionFailed):
        storage.write("c", b"3", if_match=first.etag)
    with pytest.raises(PreconditionFailed):
        storage.write("absent", b"3", if_match=first.etag)
    assert storage.read("c") == b"2"
    assert not storage.exists("absent")


# -- multipart -------------------------------------------------------------------------------


def _refuses_multipart(storage: Storage) -> bool:
    """A backend without multipart says so in its capabilities and refuses to start one."""
    if storage.capabilities.multipart:
        return False
    with pytest.raises(Unsupported):
        storage.create_multipart("mp/obj")
    return True


def test_multipart_upload_assembles_parts(storage: Storage) -> None:
    if _refuses_multipart(storage):
        return
    chunks = [os.urandom(max(storage.capabilities.min_part_size, 64 * 1024)), os.urandom(1000)]
    upload_id = storage.create_multipart(
        "mp/obj", metadata={"mode": "0640"}, content_type="application/x-test"
    )
    parts = [
        storage.upload_part("mp/obj", upload_id, 1, chunks[0], content_md5(chunks[0])),
        storage.upload_part("mp/obj", upload_id, 2, io.BytesIO(chunks[1]), content_md5(chunks[1])),
    ]
    assert [(u.key, u.upload_id) for u in storage.list_multipart("mp/")] == [("mp/obj", upload_id)]

    info = storage.complete_multipart("mp/obj", upload_id, parts)
    assert storage.read("mp/obj") == b"".join(chunks)
    stat = storage.stat("mp/obj")
    assert (stat.size, stat.etag, stat.metadata, stat.content_type) == (
        sum(map(len, chunks)),
        info.etag,
        {"mode": "0640"},
        "application/x-test",
    )
    assert storage.list_multipart("mp/") == []


def test_aborted_upload_disappears(storage: Storage) -> None:
    if _refuses_multipart(storage):
        return
    upload_id = storage.create_multipart("ab/obj")
    storage.upload_part("ab/obj", upload_id, 1, b"x", content_md5(b"x"))
    assert [u.upload_id for u in storage.list_multipart("")] == [upload_id]
    storage.abort_multipart("ab/obj", upload_id)
    storage.abort_multipart("ab/obj", upload_id)
    assert storage.list_multipart("") == []
    assert not storage.exists("ab/obj")


@pytest.mark.parametrize("kind", ["memory", "local"])
def test_write_with_a_wrong_md5_stores_nothing(kind: str, request: pytest.FixtureRequest) -> None:
    """moto ignores Content-MD5, so S3's side is test_s3_bad_digest_is_an_integrity_error."""
    storage = next(_bucket(kind, request))
    with pytest.raises(IntegrityError):
        storage.write("md5/whole", b"data", md5=content_md5(b"other"))
    assert not storage.exists("md5/whole")
    storage.write("md5/whole", b"data", md5=content_md5(b"data"))
    assert storage.read("md5/whole") == b"data"


@pytest.mark.parametrize("kind", ["memory", "local"])
def test_part_with_a_wrong_md5_is_rejected(kind: str, request: pytest.FixtureRequest) -> None:
    """moto ignores Content-MD5, so S3's side is test_s3_bad_digest_is_an_integrity_error."""
    storage = next(_bucket(kind, request))
    upload_id = storage.create_multipart("md5/obj")
    with pytest.raises(IntegrityError):
        storage.upload_part("md5/obj", upload_id, 1, b"data", content_md5(b"other"))


# -- the seed's interface, whole-bucket behaviour --------------------------------------------


def test_seed_interface(storage: Storage, tmp_path: Path) -> None:
    storage.save("seed/a.txt", b"alpha")
    storage.save("seed/sub/b.txt", b"beta")
    assert storage.load("seed/a.txt") == storage.load_once("seed/a.txt") == b"alpha"
    assert b"".join(storage.load("seed/a.txt", stream=True)) == b"alpha"
    assert b"".join(storage.load_stream("seed/sub/b.txt")) == b"beta"

    target = tmp_path / "out.txt"
    storage.download("seed/sub/b.txt", str(target))
    assert target.read_bytes() == b"beta"
    with pytest.raises(NotFound):
        storage.download("seed/missing", str(tmp_path / "missing.txt"))
    assert not list(tmp_path.glob("missing.txt*"))  # no half-written file is left behind

    assert storage.exists("seed/a.txt")
    assert not storage.exists("seed/zzz")
    assert storage.scan("seed") == ["a.txt", "sub/b.txt"]
    assert storage.scan("seed", files=False, directories=True) == ["sub"]
    storage.delete("seed/a.txt")
    assert storage.scan("seed") == ["sub/b.txt"]


def test_check_and_describe(storage: Storage) -> None:
    storage.check()
    assert storage.describe().startswith(f"{storage.scheme}://")
    assert "testing" not in storage.describe()


def test_url_fetches_the_object_where_supported(storage: Storage) -> None:
    storage.write("u.txt", b"fetch me")
    try:
        url = storage.url("u.txt")
    except Unsupported:
        assert storage.scheme in ("memory", "opendal+memory")  # nothing to serve a URL from
        return
    with build_opener().open(url, timeout=10) as answer:  # proxies as the environment says now
        assert answer.read() == b"fetch me"


# -- S3 only ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_with_auth() -> Iterator[str]:
    server = start_moto(auth=True)
    try:
        yield server.endpoint
    finally:
        server.stop()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_s3_check_names_a_missing_bucket(moto_endpoint: str, s3_env: dict[str, str]) -> None:
    storage = S3Storage("objfs-no-such-bucket", S3Connection(endpoint_url=moto_endpoint, region=REGION))
    with pytest.raises(NotFound) as caught:
        storage.check()
    assert str(caught.value) == f"bucket 'objfs-no-such-bucket' does not exist at {moto_endpoint}"


def test_s3_check_fails_fast_when_nothing_answers(s3_env: dict[str, str]) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    storage = S3Storage("objfs-any", S3Connection(endpoint_url=endpoint, region=REGION))
    started = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        storage.check()
    assert time.monotonic() - started < 5
    assert str(caught.value) == f"cannot reach {endpoint}: connection refused"


def test_s3_check_reports_rejected_credentials(
    moto_with_auth: str, s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAOBJFSBOGUSKEY000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "bogus-secret-value")
    storage = S3Storage("objfs-any", S3Connection(endpoint_url=moto_with_auth, region=REGION))
    with pytest.raises(PermissionDenied) as caught:
        storage.check()
    expected = "access denied to bucket 'objfs-any': the credentials were rejected (InvalidAccessKeyId)"
    assert str(caught.value) == expected


def test_s3_check_without_credentials(
    moto_endpoint: str, s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    storage = S3Storage("objfs-any", S3Connection(endpoint_url=moto_endpoint, region=REGION))
    with pytest.raises(PermissionDenied, match=NO_CREDENTIALS):
        storage.check()


def test_s3_errors_carry_key_and_request_id(s3_storage: Storage) -> None:
    s3_storage.write("k", b"x")
    with pytest.raises(PreconditionFailed) as caught:
        s3_storage.write("k", b"y", if_none_match=True)
    assert caught.value.key == "k"
    assert caught.value.request_id


def test_s3_bad_digest_is_an_integrity_error(s3_storage: Storage) -> None:
    """Real S3 answers a wrong Content-MD5 with BadDigest; moto never does, so replay S3's answer."""
    assert isinstance(s3_storage, S3Storage)
    with Stubber(s3_storage._client) as stub:
        stub.add_client_error(
            "upload_part",
            "BadDigest",
            "The Content-MD5 you specified did not match",
            400,
            response_meta={"RequestId": "R1"},
        )
        with pytest.raises(IntegrityError) as caught:
            s3_storage.upload_part("k", "upload", 1, b"data", content_md5(b"other"))
    assert (caught.value.key, caught.value.request_id) == ("k", "R1")


def test_s3_url_parsing(s3_env: dict[str, str]) -> None:
    location = registry.open_location("s3://bkt/some/prefix/", {"endpoint": "http://127.0.0.1:1"})
    assert (location.storage.describe(), location.prefix) == ("s3://bkt", "some/prefix")
    with pytest.raises(BadConfiguration):
        registry.open_location("s3:///prefix")
    with pytest.raises(BadConfiguration):
        registry.open_location("s3://bkt", {"secret_key": "x"})
    with pytest.raises(BadConfiguration):
        registry.open_location("s3://bkt", {"addressing_style": "sideways"})


# -- local only ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["", "a//b", "/abs", "../x", "a/../../x", "a/./b", ".objfs/x", "nul\0", "n" * 256]
)
def test_local_refuses_keys_that_leave_the_folder(local_storage: Storage, key: str) -> None:
    with pytest.raises(InvalidKey):
        local_storage.write(key, b"x")
    with pytest.raises(InvalidKey):
        local_storage.stat(key)


def test_local_file_and_folder_cannot_share_a_name(local_storage: Storage) -> None:
    local_storage.write("a", b"file")
    with pytest.raises(InvalidKey):
        local_storage.write("a/b", b"x")
    local_storage.write("d/e", b"x")
    with pytest.raises(InvalidKey):
        local_storage.write("d", b"x")


def test_local_delete_prunes_implicit_folders_but_keeps_markers(local_storage: Storage) -> None:
    root = Path(local_storage.describe().removeprefix("local://"))
    local_storage.write("x/y/z.txt", b"1")
    local_storage.write("keep/", b"")
    local_storage.write("keep/inner/f", b"2")
    local_storage.delete("x/y/z.txt")
    assert not (root / "x").exists()
    local_storage.delete("keep/inner/f")
    assert (root / "keep").is_dir()
    assert not (root / "keep" / "inner").exists()
    assert local_storage.list("").prefixes == ["keep/"]
    local_storage.delete("keep/")
    assert not (root / "keep").exists()
    assert local_storage.list("") == ListPage()


def test_local_objects_are_plain_files_with_xattrs(local_storage: Storage) -> None:
    root = Path(local_storage.describe().removeprefix("local://"))
    local_storage.write("a/b.txt", b"text", metadata={"mode": "0644"}, content_type="text/plain")
    local_storage.write("m/", b"")
    assert (root / "a" / "b.txt").read_bytes() == b"text"
    assert os.getxattr(root / "a" / "b.txt", "user.objfs.meta.mode") == b"0644"
    assert os.getxattr(root / "a" / "b.txt", "user.objfs.content_type") == b"text/plain"
    assert os.getxattr(root / "m", "user.objfs.dir") == b"1"
    assert (root / ".objfs").is_dir()
    assert local_storage.list("").prefixes == ["a/", "m/"]


def test_local_pages_match_the_reference_backend(local_storage: Storage) -> None:
    """Local walks folders where memory sorts a dict; every prefix and page size must agree."""
    reference = MemoryStorage(f"contract-{uuid.uuid4().hex}")
    keys = ["x-1", "x/1", "x/y/", "x/y/2", "x/y-3", "x0", "m/", "m/n/o/", "\u00e9/1", "z"]
    for key in keys:
        local_storage.write(key, b"")
        reference.write(key, b"")
    for removed in (None, "x/y/2"):
        if removed:
            local_storage.delete(removed)
            reference.delete(removed)
        for prefix in sorted({key[:end] for key in keys for end in range(len(key) + 1)}):
            for delimiter in ("/", None, "-"):
                for limit in (1, 3, 1000):
                    expected = _all_pages(reference, prefix, delimiter, limit)
                    assert _all_pages(local_storage, prefix, delimiter, limit) == expected


def test_local_metadata_past_the_xattr_block_is_no_space(local_storage: Storage) -> None:
    """ext4 holds a file's xattrs in one block: more is ENOSPC at once, never a 30 s retry."""
    with pytest.raises(NoSpace) as caught:
        local_storage.write("big-meta", b"x", metadata={"xattr": "v" * 8192})
    assert caught.value.errno == errno.ENOSPC
    assert not local_storage.exists("big-meta")


def test_local_check_names_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=f"folder {tmp_path / 'nope'} does not exist"):
        LocalStorage(tmp_path / "nope").check()


def test_local_url_parsing(tmp_path: Path) -> None:
    location = registry.open_location(f"local://{tmp_path}")
    assert (location.storage.describe(), location.prefix) == (f"local://{tmp_path}", "")
    with pytest.raises(BadConfiguration):
        registry.open_location(f"local://elsewhere{tmp_path}")
    with pytest.raises(BadConfiguration):
        registry.open_location(f"local://{tmp_path}", {"endpoint": "http://x"})


def test_a_conditional_completion_lands_only_over_the_version_named(storage: Storage) -> None:
    if _refuses_multipart(storage):
        return
    part = os.urandom(max(storage.capabilities.min_part_size, 1024))

    def upload(key: str) -> tuple[str, list[UploadedPart]]:
        upload_id = storage.create_multipart(key)
        return upload_id, [storage.upload_part(key, upload_id, 1, part, content_md5(part))]

    first = storage.write("cmp/obj", b"first")
    storage.write("cmp/obj", b"second")
    upload_id, parts = upload("cmp/obj")
    with pytest.raises(PreconditionFailed):
        storage.complete_multipart_if("cmp/obj", upload_id, parts, if_match=first.etag)
    storage.abort_multipart("cmp/obj", upload_id)
    assert storage.read("cmp/obj") == b"second"

    upload_id, parts = upload("cmp/obj")
    with pytest.raises(PreconditionFailed):
        storage.complete_multipart_if("cmp/obj", upload_id, parts, if_none_match=True)
    storage.abort_multipart("cmp/obj", upload_id)

    upload_id, parts = upload("cmp/obj")
    current = storage.stat("cmp/obj").etag
    storage.complete_multipart_if("cmp/obj", upload_id, parts, if_match=current)
    assert storage.read("cmp/obj") == part
    upload_id, parts = upload("cmp/new")
    storage.complete_multipart_if("cmp/new", upload_id, parts, if_none_match=True)
    assert storage.read("cmp/new") == part
