"""Google Cloud Storage's JSON API, spoken by the session's fake-gcs-server."""

from __future__ import annotations

import uuid

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage


def settings(request: pytest.FixtureRequest) -> dict[str, str]:
    endpoint = request.getfixturevalue("fake_gcs_endpoint")
    return {
        "STORAGE_TYPE": "google-storage",
        "GOOGLE_STORAGE_ENDPOINT": endpoint,
        "GOOGLE_STORAGE_BUCKET_NAME": create_bucket(endpoint),
    }


def create_bucket(endpoint: str) -> str:
    """A new, empty bucket on the emulator (which checks no credentials)."""
    name = f"objfs-test-{uuid.uuid4().hex[:16]}"
    client = storage.Client(
        project="testing", credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint}
    )
    try:
        client.create_bucket(name)
    finally:
        client.close()
    return name
