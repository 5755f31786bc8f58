"""Oracle Cloud Infrastructure Object Storage through its S3 compatibility API.

OCI's S3 endpoint (`https://NAMESPACE.compat.objectstorage.REGION.oraclecloud.com`) accepts only
path-style requests and rejects the flexible checksums boto3 sends by default since 1.36, so the
connection is S3's with those two settings fixed; everything else is S3Storage.
"""

from __future__ import annotations

from .s3 import S3Connection, S3Storage
from .settings import SettingNames, Settings


class OciStorage(S3Storage):
    scheme = "oci"
    names = SettingNames(bucket="OCI_BUCKET_NAME", endpoint="OCI_ENDPOINT", region="OCI_REGION")
    flag_names = {}

    @classmethod
    def connection_from(cls, settings: Settings) -> S3Connection:
        settings.require(
            "OCI_ENDPOINT",
            "the S3 compatibility endpoint, https://NAMESPACE.compat.objectstorage.REGION.oraclecloud.com",
        )
        settings.require("OCI_REGION", "the bucket's region, e.g. us-ashburn-1")
        return S3Connection.from_settings(settings, "OCI", addressing_style="path")
