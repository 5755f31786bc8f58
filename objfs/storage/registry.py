"""Which backend serves a URL scheme or a `STORAGE_TYPE`, and how a SOURCE becomes an opened bucket.

Backends are named by import path and imported only when used, so mounting a local folder never
imports a cloud SDK, and a missing SDK is reported with the extra that installs it. Adding a
backend is one module and one line in `BACKENDS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .base import BadConfiguration, Storage
from .settings import CA_BUNDLE, PROXY, SSE, SSE_KMS_KEY_ID, STORAGE_CLASS, Settings


@dataclass(frozen=True)
class Backend:
    """One storage type: its URL scheme, the seed's `STORAGE_TYPE` name, its class, its pip extra."""

    scheme: str
    storage_type: str
    target: str
    extra: str | None = None

    def load(self) -> type[Storage]:
        module_name, _, class_name = self.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if self.extra is None or (exc.name or "").startswith("objfs"):
                raise
            raise BadConfiguration(
                f"the {self.storage_type} backend needs its SDK ({exc.name}): "
                f"pip install 'objfs[{self.extra}]'"
            ) from None
        return getattr(module, class_name)


BACKENDS: tuple[Backend, ...] = (
    Backend("memory", "memory", "objfs.storage.memory:MemoryStorage"),
    Backend("local", "local", "objfs.storage.local:LocalStorage"),
    Backend("s3", "s3", "objfs.storage.s3:S3Storage"),
    Backend("oci", "oci-storage", "objfs.storage.oci:OciStorage"),
    Backend("oss", "aliyun-oss", "objfs.storage.oss:OssStorage", "oss"),
    Backend("cos", "tencent-cos", "objfs.storage.cos:CosStorage", "cos"),
    Backend("obs", "huawei-obs", "objfs.storage.obs:ObsStorage", "obs"),
    Backend("bos", "baidu-obs", "objfs.storage.bos:BosStorage", "bos"),
    Backend("tos", "volcengine-tos", "objfs.storage.tos:TosStorage", "tos"),
    Backend("azure", "azure-blob", "objfs.storage.azure:AzureBlobStorage", "azure"),
    Backend("gs", "google-storage", "objfs.storage.gcs:GcsStorage", "gcs"),
    Backend("supabase", "supabase", "objfs.storage.supabase:SupabaseStorage", "supabase"),
    Backend("opendal", "opendal", "objfs.storage.opendal:OpendalStorage", "opendal"),
    Backend("clickzetta", "clickzetta-volume", "objfs.storage.clickzetta:ClickzettaStorage", "clickzetta"),
)

GENERIC_FLAGS = {
    "ca_bundle": CA_BUNDLE,
    "proxy": PROXY,
    "sse": SSE,
    "sse_kms_key_id": SSE_KMS_KEY_ID,
    "storage_class": STORAGE_CLASS,
}
"""Command-line flags every backend reads under the same setting name."""


class UnknownScheme(BadConfiguration):
    """The SOURCE names a scheme, or STORAGE_TYPE a type, that no backend serves."""


@dataclass(frozen=True)
class Location:
    """What a SOURCE names: the bucket's backend and the prefix inside it (no slashes around)."""

    storage: Storage
    prefix: str


def backend_for_scheme(scheme: str) -> Backend:
    for backend in BACKENDS:
        if backend.scheme == scheme:
            return backend
    known = ", ".join(backend.scheme for backend in BACKENDS)
    raise UnknownScheme(f"unknown storage scheme {scheme!r} (known: {known})")


def backend_for_type(storage_type: str) -> Backend:
    for backend in BACKENDS:
        if backend.storage_type == storage_type:
            return backend
    known = ", ".join(backend.storage_type for backend in BACKENDS)
    raise UnknownScheme(f"unknown STORAGE_TYPE {storage_type!r} (known: {known})")


def backend_class(scheme: str) -> type[Storage]:
    return backend_for_scheme(scheme).load()


def open_location(
    source: str | None, flags: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None
) -> Location:
    """Open what a mount names, the command line winning over `base` (config files, environment).

    `source` is a URL (`s3://bucket/prefix`, `local:///srv/bucket`, `opendal+fs:///tmp/x`), or None
    to take the backend from `STORAGE_TYPE` in `base`, as the seed's deployments configure it.
    `flags` are the storage flags given (`endpoint`, `region`, `proxy`, ...).
    """
    base = dict(base or {})
    if source is None:
        cls = backend_for_type(Settings(base).require("STORAGE_TYPE", "the type of storage to mount")).load()
        command_line: dict[str, str] = {}
    else:
        cls, command_line = _parse_url(source)
    command_line.update(_flag_settings(cls, dict(flags or {})))
    settings = Settings({**base, **command_line})
    storage = cls.from_settings(settings)
    return Location(storage, settings.get(cls.names.prefix, "").strip("/"))


def _parse_url(source: str) -> tuple[type[Storage], dict[str, str]]:
    parts = urlsplit(source)
    if not parts.scheme:
        raise UnknownScheme(f"{source!r} is not a storage URL; try local:///path or s3://bucket/prefix")
    scheme, plus, variant = parts.scheme.partition("+")
    cls = backend_for_scheme(scheme).load()
    return cls, cls.url_settings(unquote(parts.netloc), unquote(parts.path), variant if plus else None)


def _flag_settings(cls: type[Storage], flags: dict[str, str]) -> dict[str, str]:
    """Flags under the setting names this backend reads; a flag it has no setting for is an error."""
    named = {"endpoint": cls.names.endpoint, "region": cls.names.region, **GENERIC_FLAGS, **cls.flag_names}
    settings: dict[str, str] = {}
    for flag, value in flags.items():
        name = named.get(flag)
        if name is None:
            raise BadConfiguration(f"{cls.scheme} has no {flag.replace('_', '-')} setting")
        settings[name] = value
    return settings
