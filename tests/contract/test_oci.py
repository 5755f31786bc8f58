"""OCI specifics: the client settings OCI requires, which moto cannot enforce, and the seed's names."""

from __future__ import annotations

import pytest

from objfs.storage.base import BadConfiguration
from objfs.storage.oci import OciStorage
from objfs.storage.registry import open_location

CREDENTIALS = {"OCI_ACCESS_KEY": "testing", "OCI_SECRET_KEY": "testing"}
ENDPOINT = "https://ns.compat.objectstorage.us-ashburn-1.oraclecloud.com"


def test_oci_requests_are_path_style_without_flexible_checksums() -> None:
    """OCI rejects boto3's default CRC checksums (since boto3 1.36) and virtual-host URLs."""
    location = open_location("oci://bkt/pre", {"endpoint": ENDPOINT, "region": "us-ashburn-1"}, CREDENTIALS)
    assert isinstance(location.storage, OciStorage)
    config = location.storage._client.meta.config
    assert config.s3["addressing_style"] == "path"
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"
    url = location.storage.url("a/b.txt")
    assert url.startswith(f"{ENDPOINT}/bkt/a/b.txt?")
    assert (location.storage.describe(), location.prefix) == ("oci://bkt", "pre")


def test_oci_url_and_environment_name_the_same_bucket() -> None:
    from_url = open_location("oci://bkt/pre", {"endpoint": ENDPOINT, "region": "us-ashburn-1"}, CREDENTIALS)
    from_environment = open_location(
        None,
        base={
            "STORAGE_TYPE": "oci-storage",
            "OCI_BUCKET_NAME": "bkt",
            "STORAGE_PREFIX": "pre",
            "OCI_ENDPOINT": ENDPOINT,
            "OCI_REGION": "us-ashburn-1",
            **CREDENTIALS,
        },
    )
    assert (from_url.storage.describe(), from_url.prefix) == (from_environment.storage.describe(), "pre")


@pytest.mark.parametrize("missing", ["OCI_ENDPOINT", "OCI_REGION"])
def test_oci_needs_its_endpoint_and_region(missing: str) -> None:
    settings = {"OCI_ENDPOINT": ENDPOINT, "OCI_REGION": "us-ashburn-1", **CREDENTIALS}
    del settings[missing]
    with pytest.raises(BadConfiguration, match=f"^{missing} is not set"):
        open_location("oci://bkt", base=settings)
