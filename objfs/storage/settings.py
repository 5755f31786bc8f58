"""Backend configuration as KEY=VALUE settings, in the names the seed's deployments already use.

A SOURCE URL with flags, the environment (`STORAGE_TYPE=s3`, `S3_BUCKET_NAME=...`) and a config
file all end up as one `Settings`, so the three ways of configuring a mount give one result and a
backend reads its configuration in one place. Messages name a setting, never its value.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from .base import BadConfiguration

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})

PREFIX = "STORAGE_PREFIX"
"""The key prefix inside the bucket, for backends whose seed configuration names none."""
CA_BUNDLE = "STORAGE_CA_BUNDLE"
"""A PEM file of certificate authorities to trust instead of the system's (`--ca-bundle`)."""
PROXY = "STORAGE_PROXY"
"""An HTTP(S) proxy URL for every request to the service (`--proxy`)."""
SSE = "STORAGE_SSE"
"""Server-side encryption of new objects: `sse-s3`, `sse-kms` or `sse-c` (`--sse`)."""
SSE_KMS_KEY_ID = "STORAGE_SSE_KMS_KEY_ID"
"""The KMS key for `sse-kms` (`--sse-kms-key-id`); the service's default key when unset."""
SSE_C_KEY = "STORAGE_SSE_C_KEY"
"""The customer key for `sse-c`, base64; a secret, so never a flag."""
STORAGE_CLASS = "STORAGE_CLASS"
"""Storage class of new objects, in the service's own words (`--storage-class`)."""
SSE_MODES = ("sse-s3", "sse-kms", "sse-c")


@dataclass(frozen=True)
class SettingNames:
    """Which settings hold the bucket, endpoint, region and prefix of one backend.

    The command line's URL and `--endpoint`/`--region` flags are written into these names, so
    `s3://b/p --region eu-west-1` and `S3_BUCKET_NAME=b STORAGE_PREFIX=p S3_REGION=eu-west-1`
    configure the same mount.
    """

    bucket: str | None = None
    endpoint: str | None = None
    region: str | None = None
    prefix: str = PREFIX


class Settings(Mapping[str, str]):
    """Read-only settings; an empty value counts as unset, as it does in a shell `.env` file."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = {name: value for name, value in (values or {}).items() if value != ""}

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Settings({', '.join(sorted(self._values))})"  # names only: values may be secrets

    def require(self, name: str, what: str) -> str:
        """The value of `name`, or a BadConfiguration saying what it is for and how to set it."""
        value = self.get(name)
        if value is None:
            raise BadConfiguration(f"{name} is not set: {what}")
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.get(name)
        if value is None:
            return default
        if value.lower() in TRUE_WORDS:
            return True
        if value.lower() in FALSE_WORDS:
            return False
        raise BadConfiguration(f"{name} must be true or false")

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.get(name, default).lower()
        if value not in choices:
            raise BadConfiguration(f"{name} must be one of {', '.join(choices)}")
        return value

    def file(self, name: str) -> str | None:
        """A path setting (a CA bundle, a key file) checked now, not at the first request."""
        path = self.get(name)
        if path is not None and not os.access(path, os.R_OK):
            raise BadConfiguration(f"{name} names {path}, which is not a readable file")
        return path

    def sse(self) -> str | None:
        """The server-side encryption mode asked for, checked against the modes objfs knows."""
        mode = self.get(SSE)
        if mode is None:
            return None
        mode = mode.lower()
        if mode not in SSE_MODES:
            raise BadConfiguration(f"{SSE} must be one of {', '.join(SSE_MODES)}")
        if mode == "sse-c" and self.get(SSE_C_KEY) is None:
            raise BadConfiguration(f"{SSE}=sse-c needs the key in {SSE_C_KEY} (environment or a 0600 file)")
        return mode

    def sse_c_key(self) -> bytes | None:
        """The SSE-C customer key as bytes when `sse-c` is asked for, else None.

        Checked here, once for every backend that offers SSE-C, so a malformed key fails at
        configuration rather than at the first request; the message names the setting only.
        """
        if self.sse() != "sse-c":
            return None
        try:
            key = base64.b64decode(self.require(SSE_C_KEY, "the SSE-C key"), validate=True)
        except binascii.Error:
            key = b""
        if len(key) != 32:
            raise BadConfiguration(f"{SSE_C_KEY} must be a base64-encoded 256-bit key")
        return key

    def merged(self, overrides: Mapping[str, str]) -> Settings:
        return Settings({**self._values, **overrides})
