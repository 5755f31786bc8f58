"""S3's settings reach the service: the seed's S3_* names, encryption, storage class, a proxy, a
CA bundle; and an archived object is an Archived error, on moto over HTTP."""

from __future__ import annotations

import base64
import errno
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
from servers.proxy import CuttableProxy

from objfs.storage.base import Archived, BadConfiguration, Storage
from objfs.storage.registry import open_location
from objfs.storage.s3 import S3Storage

REGION = "us-east-1"


@pytest.fixture
def settings(moto_endpoint: str, s3_bucket: str) -> dict[str, str]:
    return {
        "STORAGE_TYPE": "s3",
        "S3_ENDPOINT": moto_endpoint,
        "S3_REGION": REGION,
        "S3_BUCKET_NAME": s3_bucket,
        "S3_ACCESS_KEY": "testing",
        "S3_SECRET_KEY": "testing",
    }


@pytest.fixture
def client(moto_endpoint: str, s3_env: dict[str, str]) -> Iterator:
    made = boto3.session.Session().client("s3", endpoint_url=moto_endpoint, region_name=REGION)
    yield made
    made.close()


def _open(settings: dict[str, str], **extra: str) -> Storage:
    return open_location(None, base={**settings, **extra}).storage


def test_sse_s3_and_storage_class_reach_the_service(settings: dict[str, str], client) -> None:
    storage = _open(settings, STORAGE_SSE="sse-s3", STORAGE_CLASS="STANDARD_IA")
    storage.write("enc", b"secret bytes")
    head = client.head_object(Bucket=settings["S3_BUCKET_NAME"], Key="enc")
    assert (head["ServerSideEncryption"], head["StorageClass"]) == ("AES256", "STANDARD_IA")
    upload = storage.create_multipart("big")
    storage.abort_multipart("big", upload)


def test_sse_kms_names_its_key(settings: dict[str, str], client) -> None:
    storage = _open(settings, STORAGE_SSE="sse-kms", STORAGE_SSE_KMS_KEY_ID="alias/objfs-test")
    storage.write("kms", b"x")
    storage.copy("kms", "kms-copy")
    for key in ("kms", "kms-copy"):
        head = client.head_object(Bucket=settings["S3_BUCKET_NAME"], Key=key)
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", "alias/objfs-test")


def test_sse_c_sends_the_key_with_every_request_on_the_bytes(settings: dict[str, str]) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    storage = _open(settings, STORAGE_SSE="sse-c", STORAGE_SSE_C_KEY=key)
    storage.write("c", b"customer keyed")
    assert storage.read("c") == b"customer keyed"
    assert storage.stat("c").size == 14
    with pytest.raises(BadConfiguration, match=r"^STORAGE_SSE_C_KEY must be a base64-encoded 256-bit key$"):
        _open(settings, STORAGE_SSE="sse-c", STORAGE_SSE_C_KEY="c2hvcnQ=")
    with pytest.raises(BadConfiguration, match=r"^STORAGE_SSE=sse-c needs the key in STORAGE_SSE_C_KEY"):
        _open(settings, STORAGE_SSE="sse-c")


def test_requests_go_through_the_proxy(settings: dict[str, str], moto_endpoint: str) -> None:
    """The endpoint's host does not resolve: only a proxy that forwards to moto can answer."""
    proxy = CuttableProxy(urlsplit(moto_endpoint).port or 80)
    try:
        storage = _open(
            settings,
            S3_ENDPOINT="http://s3.objfs-test.invalid",
            S3_ADDRESS_STYLE="virtual",  # moto takes the bucket from the Host, as S3 does
            STORAGE_PROXY=proxy.endpoint,
        )
        storage.write("via-proxy", b"forwarded")
        assert storage.read("via-proxy") == b"forwarded"
        assert "proxy" not in repr(storage._connection)  # a proxy URL may carry a password
    finally:
        proxy.close()


def test_a_missing_ca_bundle_is_named_at_once(settings: dict[str, str], tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    with pytest.raises(
        BadConfiguration, match=f"^STORAGE_CA_BUNDLE names {missing}, which is not a readable"
    ):
        _open(settings, STORAGE_CA_BUNDLE=str(missing))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"S3_ADDRESS_STYLE": "sideways"}, "^S3_ADDRESS_STYLE must be one of auto, path, virtual$"),
        ({"S3_SIGNATURE_VERSION": "v3"}, "^S3_SIGNATURE_VERSION must be v4"),
        ({"S3_SECRET_KEY": ""}, "^S3_ACCESS_KEY and S3_SECRET_KEY must be set together$"),
        ({"STORAGE_SSE": "rot13"}, "^STORAGE_SSE must be one of sse-s3, sse-kms, sse-c$"),
    ],
)
def test_bad_settings_are_named_never_their_values(
    settings: dict[str, str], extra: dict[str, str], message: str
) -> None:
    with pytest.raises(BadConfiguration, match=message) as caught:
        _open(settings, **extra)
    assert "testing" not in str(caught.value)


def test_seed_names_choose_the_signature_and_managed_iam(settings: dict[str, str]) -> None:
    storage = _open(settings, S3_SIGNATURE_VERSION="v4", S3_ADDRESS_STYLE="virtual")
    assert isinstance(storage, S3Storage)
    config = storage._client.meta.config
    assert (config.signature_version, config.s3["addressing_style"]) == ("s3v4", "virtual")
    managed = _open(settings, S3_USE_AWS_MANAGED_IAM="true")
    assert isinstance(managed, S3Storage) and managed._connection.access_key is None


def test_an_archived_object_is_archived_not_an_outage(settings: dict[str, str], client) -> None:
    client.put_object(Bucket=settings["S3_BUCKET_NAME"], Key="cold", Body=b"frozen", StorageClass="GLACIER")
    storage = _open(settings)
    with pytest.raises(Archived) as caught:
        storage.read("cold")
    assert caught.value.errno == errno.EREMOTE
    assert str(caught.value).startswith(f"s3://{settings['S3_BUCKET_NAME']}/cold is archived")
    assert caught.value.request_id
