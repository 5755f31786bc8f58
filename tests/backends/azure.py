"""Azure Blob Storage's API, spoken by the session's Azurite, with the development account's key."""

from __future__ import annotations

import uuid

import pytest
from azure.storage.blob import BlobServiceClient
from servers.azurite import ACCOUNT, ACCOUNT_KEY


def settings(request: pytest.FixtureRequest) -> dict[str, str]:
    endpoint = request.getfixturevalue("azurite_endpoint")
    container = f"objfs-test-{uuid.uuid4().hex[:16]}"
    with BlobServiceClient(
        endpoint, credential={"account_name": ACCOUNT, "account_key": ACCOUNT_KEY}
    ) as client:
        client.create_container(container)
    return {
        "STORAGE_TYPE": "azure-blob",
        "AZURE_BLOB_ACCOUNT_URL": endpoint,
        "AZURE_BLOB_ACCOUNT_NAME": ACCOUNT,
        "AZURE_BLOB_ACCOUNT_KEY": ACCOUNT_KEY,
        "AZURE_BLOB_CONTAINER_NAME": container,
    }
