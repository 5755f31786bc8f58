"""ClickZetta Lakehouse volumes (the user volume, a table's volume, or a named volume) through the connector.

A volume is not an object store: every operation is a SQL job run by `clickzetta-connector-python`
(`PUT '<local file>' TO <volume> FILE '<path>'`, `GET <volume> FILE '<path>' TO '<dir>'`, `LIST <volume>
REGEXP = '<re>'`, `REMOVE <volume> FILE '<path>'`), and PUT/GET answer with presigned URLs the connector
then uploads to or downloads from itself. So there is no ranged GET, no HEAD, no user metadata, no
copy and no multipart, and this backend builds what objfs needs on what a volume has:
- stat and listings are one LIST each (size and whole-second last-modified time per file), filtered by a
  regular expression and grouped on this side (`page_of_keys`);
- reads GET the whole file into a temporary folder and return the slice asked for (`ranged_read=False`);
  the size is checked against the listing first, because the connector does not check the download's
  HTTP status (an error page would otherwise be read as the file);
- writes PUT from a temporary file (the connector reads it whole into memory to upload it); the upload's
  status is not checked by the connector either, so a LIST afterwards proves it arrived;
- user metadata, content type and the etag live in a sidecar file `.objfs-meta/<key>#<token>.json`
  beside the data (hidden from listings, reserved as a key). The token, 32 hex digits beginning with the
  writer's clock in ns, is the etag, so a listing shows it without reading anything and two writes of the
  same size in the same second still differ. The newest token wins; older sidecars are removed after a
  write. A sidecar older (by the volume's clock) than its file was left by a write that did not finish,
  or the file was rewritten by another tool: it is ignored and the etag is `<size>-<mtime>` in hex.
  The trade-off: a write is 3-4 jobs (PUT, PUT sidecar, LIST, REMOVE the old sidecar), a stat 1-2;
- a directory marker (`dir/`) is a sidecar alone, never a file whose path ends in `/`;
- url() is the service's `GET_PRESIGNED_URL` SQL function.
Conditional writes are checked with a stat before the write (`check_conditions`), not atomically.

Settings are the seed's (`CLICKZETTA_VOLUME_*`). `TYPE=user` (the default) keeps every key under
`DIFY_PREFIX/` in the user's volume, as the seed does; `TYPE=table` is the volume of the table
`TABLE_PREFIX + NAME` (NAME may already carry the prefix, as the seed's dataset ids may); `TYPE=external`
is the volume NAME. URLs: `clickzetta://user/prefix`, `clickzetta://<volume>/prefix` (external),
`clickzetta+table://<dataset>/prefix`.

The connector's retries are turned off or bounded, as objfs retries every backend itself: the login is
one attempt (the connector's own login tries 6 times with backoff), a job is submitted once, its HTTP
requests go through one session with timeouts and no retries, and a job running over 60 s is
cancelled. The connector keeps its token and request headers in module globals, so two volumes with
different users in one process would race; one user per process is safe. Its presigned transfers use
plain `requests` calls without a timeout, proxy or CA setting, so STORAGE_PROXY and STORAGE_CA_BUNDLE
are refused (`HTTPS_PROXY` and `REQUESTS_CA_BUNDLE` in the environment reach them).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from clickzetta.connector.v0.client import Client
from clickzetta.connector.v0.connection import Connection
from clickzetta.connector.v0.converter import Converter
from clickzetta.connector.v0.enums import LoginParams
from requests.adapters import HTTPAdapter

from .base import (
    STREAM_CHUNK,
    BadConfiguration,
    Capabilities,
    InvalidKey,
    ListPage,
    NotFound,
    ObjectInfo,
    Payload,
    PermissionDenied,
    Storage,
    StorageError,
    Unavailable,
    WithoutMultipart,
    one_line,
    payload_size,
    verify_md5,
)
from .listing import page_of_keys
from .settings import CA_BUNDLE, PREFIX, PROXY, SSE, STORAGE_CLASS, SettingNames, Settings

USERNAME = "CLICKZETTA_VOLUME_USERNAME"
PASSWORD = "CLICKZETTA_VOLUME_PASSWORD"
INSTANCE = "CLICKZETTA_VOLUME_INSTANCE"
SERVICE = "CLICKZETTA_VOLUME_SERVICE"
WORKSPACE = "CLICKZETTA_VOLUME_WORKSPACE"
VCLUSTER = "CLICKZETTA_VOLUME_VCLUSTER"
SCHEMA = "CLICKZETTA_VOLUME_SCHEMA"
TYPE = "CLICKZETTA_VOLUME_TYPE"
NAME = "CLICKZETTA_VOLUME_NAME"
TABLE_PREFIX = "CLICKZETTA_VOLUME_TABLE_PREFIX"
DIFY_PREFIX = "CLICKZETTA_VOLUME_DIFY_PREFIX"
VOLUME_TYPES = ("user", "table", "external")
DEFAULTS = {
    SERVICE: "api.clickzetta.com",
    WORKSPACE: "quick_start",
    VCLUSTER: "default_ap",
    SCHEMA: "dify",
    TABLE_PREFIX: "dataset_",
    DIFY_PREFIX: "dify_km",
}

LOGIN_PATH = "/clickzetta-portal/user/loginSingle"
META = ".objfs-meta/"
"""Where sidecars live, inside the volume's root; reserved, so no key may start with it."""
TIMEOUT = (10.0, 60.0)
CHECK_TIMEOUT = (2.0, 4.0)
JOB_TIMEOUT_SECONDS = 60
HINTS = {
    "sdk.query.max.retries": "1",
    "sdk.job.timeout": str(JOB_TIMEOUT_SECONDS),
    "cz.sql.function.get.presigned.url.force.external": "true",
}
"""Job settings: one submission, a bounded run, and presigned URLs that work outside the service's cloud."""
_SIDECAR = re.compile(r"(.*)#([0-9a-f]{32})\.json", re.DOTALL)
_NOT_FOUND = ("not found", "not exist", "no such")
_TIMED_OUT = ("timeout", "timed out")
_DENIED = ("permission", "denied", "unauthorized", "illegal authorization", "forbidden")
_BAD_KEY_CHARS = frozenset("\\\n\r\0")


@dataclass(frozen=True)
class _Sidecar:
    token: str
    mtime: float
    path: str


@dataclass
class _Entry:
    """What one LIST shows of a key: its file (size, mtime), if any, and its sidecars."""

    file: tuple[int, float] | None = None
    sidecars: list[_Sidecar] = field(default_factory=list)

    def newest(self) -> _Sidecar | None:
        return max(self.sidecars, key=lambda sidecar: sidecar.token, default=None)

    def describe(self, key: str) -> tuple[ObjectInfo | None, _Sidecar | None]:
        """The object (None if there is none) and the sidecar that describes it, if one still does."""
        newest = self.newest()
        if self.file is not None:
            size, mtime = self.file
            valid = newest if newest is not None and newest.mtime >= mtime else None
            etag = valid.token if valid else f"{size:x}-{int(mtime):x}"
            return ObjectInfo(key, size, etag, mtime), valid
        if key.endswith("/") and newest is not None:
            return ObjectInfo(key, 0, newest.token, newest.mtime), newest
        return None, None


class _Session(requests.Session):
    """The connector's HTTP session, replaced: timeouts, no retries, and the last failure remembered.

    The connector turns a failed request into a plain Exception with a message, so the session
    records (per thread) what went wrong, for the error to say "connection refused" and not a guess.
    """

    def __init__(self) -> None:
        super().__init__()
        adapter = HTTPAdapter(max_retries=0, pool_maxsize=32)
        self.mount("http://", adapter)
        self.mount("https://", adapter)
        self._local = threading.local()

    @contextlib.contextmanager
    def timeouts(self, timeout: tuple[float, float]) -> Iterator[None]:
        """Use `timeout` for this thread's requests, e.g. short ones while `check()` runs."""
        self._local.timeout = timeout
        try:
            yield
        finally:
            self._local.timeout = None

    def forget(self) -> None:
        self._local.failure = None

    @property
    def failure(self) -> requests.RequestException | requests.Response | None:
        return getattr(self._local, "failure", None)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = getattr(self._local, "timeout", None) or TIMEOUT
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.RequestException as exc:
            self._local.failure = exc
            raise
        if not response.ok:
            self._local.failure = response
        return response


class _Client(Client):
    """The connector's client with a login of one attempt, through objfs's session and timeouts."""

    def __init__(self, session: _Session, **options: Any) -> None:
        self._objfs_session = session  # before the base class logs in from its constructor
        super().__init__(**options)

    def log_in_cz(self, username: str, password: str, instance: str) -> str:
        body = json.dumps(LoginParams(username, password, instance).to_api_repr())
        with self.lock:
            response = self._objfs_session.post(
                self.service + LOGIN_PATH, data=body, headers={"Content-Type": "application/json"}
            )
        refused = f"login to {self.service} as {username} refused"
        if response.status_code in (401, 403):
            raise PermissionDenied(f"{refused}: the credentials were rejected (HTTP {response.status_code})")
        if response.status_code >= 500:
            raise Unavailable(f"cannot log in at {self.service}: HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code != 200 or not isinstance(answer, dict):
            raise StorageError(
                f"cannot log in at {self.service}: unexpected answer (HTTP {response.status_code})"
            )
        token = (answer.get("data") or {}).get("token")
        if answer.get("code", 0) != 0 or not token:
            raise PermissionDenied(f"{refused}: {one_line(answer.get('message') or 'no token')}")
        return token


@dataclass(frozen=True)
class _Volume:
    """Which volume, as SQL names it, and the folder inside it that holds the keys."""

    kind: str
    name: str | None
    root: str

    @property
    def sql(self) -> str:
        if self.kind == "user":
            return "USER VOLUME"
        assert self.name is not None
        return f"{'TABLE VOLUME' if self.kind == 'table' else 'VOLUME'} {_identifier(self.name)}"

    @property
    def label(self) -> str:
        """The volume as a URL names it."""
        if self.kind == "user":
            return "clickzetta://user"
        return f"clickzetta{'+table' if self.kind == 'table' else ''}://{self.name}"


class ClickzettaStorage(WithoutMultipart):
    """One volume; one connection (logged in at the first call), shared by every worker thread."""

    scheme = "clickzetta"
    names = SettingNames(bucket=NAME, endpoint=SERVICE)
    capabilities = Capabilities(
        copy=False,
        multipart=False,
        conditional_write=False,
        metadata_in_listing=False,
        ranged_read=False,
        max_metadata_bytes=None,
        etag_is_md5=False,
    )

    def __init__(self, volume: _Volume, login: dict[str, str]) -> None:
        self._volume = volume
        self._login = login
        self._session = _Session()
        self._service = _service_url(login["service"])
        self._connection: Connection | None = None
        self._connecting = threading.Lock()

    @classmethod
    def url_settings(cls, bucket: str, path: str, variant: str | None = None) -> dict[str, str]:
        """`clickzetta://user/p` is the user volume, `clickzetta://v/p` the volume v, and
        `clickzetta+table://d/p` the volume of the table TABLE_PREFIX + d; `clickzetta+external://user/p`
        is a volume named `user`."""
        if variant is not None and variant not in VOLUME_TYPES:
            raise BadConfiguration(f"clickzetta+{variant}: the variants are {', '.join(VOLUME_TYPES)}")
        kind = variant or ("user" if bucket == "user" else "external")
        if kind == "user":
            return {TYPE: kind, PREFIX: path}
        if not bucket:
            raise BadConfiguration("a clickzetta URL needs a volume: clickzetta://volume/prefix")
        return {TYPE: kind, NAME: bucket, PREFIX: path}

    @classmethod
    def from_settings(cls, settings: Settings) -> Storage:
        _refuse_generic_settings(settings)
        login = {
            "username": settings.require(USERNAME, "the ClickZetta user"),
            "password": settings.require(PASSWORD, "the ClickZetta user's password"),
            "instance": settings.require(INSTANCE, "the ClickZetta instance"),
            **{name: settings.get(setting, DEFAULTS[setting]) for name, setting in _LOGIN_SETTINGS.items()},
        }
        kind = settings.choice(TYPE, VOLUME_TYPES, "user")
        if kind == "user":
            root = settings.get(DIFY_PREFIX, DEFAULTS[DIFY_PREFIX]).strip("/")  # `/`: the volume's root
            return cls(_Volume(kind, None, f"{root}/" if root else ""), login)
        name = settings.require(NAME, f"the {kind} volume's name: clickzetta://volume/prefix")
        if kind == "table":
            table_prefix = settings.get(TABLE_PREFIX, DEFAULTS[TABLE_PREFIX])
            name = name if name.startswith(table_prefix) else table_prefix + name
        if "`" in name:
            raise BadConfiguration(f"{NAME} cannot contain a backquote")
        return cls(_Volume(kind, name, ""), login)

    def describe(self) -> str:
        return self._volume.label

    def check(self) -> None:
        """Log in and list one path that should not exist, with short timeouts: a dead service fails in
        seconds, a missing volume is NotFound, refused credentials are PermissionDenied."""
        with self._session.timeouts(CHECK_TIMEOUT):
            self._list(f"^{re.escape(self._volume.root + META)}check$")

    # -- objects --------------------------------------------------------------------------------

    def stat(self, key: str) -> ObjectInfo:
        info, sidecar = self._locate(key).describe(key)
        if info is None:
            raise NotFound(f"no such key: {key}", key=key)
        attrs = self._attributes(key, sidecar) if sidecar else {}
        metadata = attrs.get("metadata")
        content_type = attrs.get("content_type")
        return ObjectInfo(
            key,
            info.size,
            info.etag,
            info.mtime,
            content_type if isinstance(content_type, str) else None,
            dict(metadata) if isinstance(metadata, dict) else {},
        )

    def read(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        info = self._existing(key)
        end = info.size if length is None else min(info.size, offset + length)
        if offset >= end:
            return b""
        with self._download(key, self._path(key), info.size) as local, open(local, "rb") as body:
            body.seek(offset)
            return body.read(end - offset)

    def read_stream(self, key: str, offset: int = 0) -> Iterator[bytes]:
        info = self._existing(key)
        if offset >= info.size:
            return
        with self._download(key, self._path(key), info.size) as local, open(local, "rb") as body:
            body.seek(offset)
            while chunk := body.read(STREAM_CHUNK):
                yield chunk

    def write(
        self,
        key: str,
        data: Payload,
        *,
        metadata: dict[str, str] | None = None,
        content_type: str | None = None,
        if_match: str | None = None,
        if_none_match: bool = False,
        md5: str | None = None,
    ) -> ObjectInfo:
        """PUT the data, then its sidecar; `md5` is checked here, as the volume checks no digest."""
        _check_key(key)
        verify_md5(key, data, md5)
        size = payload_size(data)
        if key.endswith("/") and size:
            raise InvalidKey(f"{self._where(key)}: a key ending in / can only be an empty marker", key=key)
        self.check_conditions(key, if_match, if_none_match)
        token = f"{time.time_ns():016x}{uuid.uuid4().hex[:16]}"
        attrs = {"metadata": dict(metadata or {}), "content_type": content_type}
        with tempfile.TemporaryDirectory(prefix="objfs-clickzetta-") as folder:
            if not key.endswith("/"):
                self._put(_spool(data, Path(folder, "body")), self._path(key), key)
            sidecar = Path(folder, "sidecar.json")
            sidecar.write_text(json.dumps(attrs))
            self._put(str(sidecar), f"{self._volume.root}{META}{key}#{token}.json", key)
        return self._settle(key, size, token, attrs)

    def list(
        self,
        prefix: str = "",
        delimiter: str | None = "/",
        token: str | None = None,
        limit: int = 1000,
    ) -> ListPage:
        """One LIST of every file under `prefix` (and of their sidecars), grouped and paged here."""
        root = re.escape(self._volume.root)
        entries = self._list(f"^{root}(?:{re.escape(META)})?{re.escape(prefix)}.*$")
        objects = {}
        for key, entry in entries.items():
            info = entry.describe(key)[0]
            if info is not None and key.startswith(prefix):
                objects[key] = info
        return page_of_keys(objects, prefix, delimiter, token, limit)

    def copy(
        self,
        src: str,
        dst: str,
        *,
        metadata: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectInfo:
        """A volume has no copy command: download and upload."""
        return self.copy_via_client(src, dst, metadata=metadata, content_type=content_type)

    def delete(self, key: str) -> None:
        """Remove the file, then its sidecars; a sidecar left by a crash in between is ignored (too old)."""
        entry = self._locate(key)
        if entry.file is not None:
            self._remove(self._path(key), key)
        for sidecar in entry.sidecars:
            self._remove(sidecar.path, key)

    def url(self, key: str, expires: int = 3600) -> str:
        """The service's presigned URL of the file (it does not check that the file exists)."""
        _check_key(key)
        arguments = f"{self._volume.sql}, {_literal(self._path(key))}, {int(expires)}"
        rows = self._query(f"SELECT GET_PRESIGNED_URL({arguments}) AS url", key, missing="volume")[1]
        if not rows or not rows[0][0]:
            raise StorageError(f"{self._where(key)}: the service gave no URL", key=key)
        return str(rows[0][0])

    def close(self) -> None:
        with self._connecting:
            if self._connection is not None:
                with contextlib.suppress(Exception):  # closing releases nothing on the service
                    self._connection.close()
                self._connection = None
        self._session.close()

    # -- volume commands ----------------------------------------------------------------------

    def _locate(self, key: str) -> _Entry:
        """One LIST of the key's file and sidecars."""
        _check_key(key)
        root, meta = re.escape(self._volume.root), re.escape(META)
        pattern = f"^{root}(?:{meta})?{re.escape(key)}(?:#[0-9a-f]{{32}}\\.json)?$"
        return self._list(pattern).get(key, _Entry())

    def _existing(self, key: str) -> ObjectInfo:
        info = self._locate(key).describe(key)[0]
        if info is None:
            raise NotFound(f"no such key: {key}", key=key)
        return info

    def _list(self, pattern: str) -> dict[str, _Entry]:
        """LIST the files whose path matches `pattern`, as entries by key (sidecars under their key)."""
        names, rows = self._query(f"LIST {self._volume.sql} REGEXP = {_literal(pattern)}", missing="volume")
        column = {name.lower(): index for index, name in enumerate(names)}
        path_at, size_at, time_at = (column.get(name, at) for name, at in _LIST_COLUMNS)
        entries: dict[str, _Entry] = {}
        root = self._volume.root
        for row in rows:
            path = str(row[path_at])
            if not path.startswith(root):
                continue
            rel, size, mtime = path[len(root) :], int(row[size_at] or 0), _seconds(row[time_at])
            found = _SIDECAR.fullmatch(rel[len(META) :]) if rel.startswith(META) else None
            if found:
                entries.setdefault(found.group(1), _Entry()).sidecars.append(
                    _Sidecar(found.group(2), mtime, path)
                )
            elif not rel.startswith(META):
                entries.setdefault(rel, _Entry()).file = (size, mtime)
        return entries

    def _settle(self, key: str, size: int, token: str, attrs: dict[str, Any]) -> ObjectInfo:
        """Prove the upload arrived (the connector does not check its PUT's status), take the volume's
        mtime, and remove the sidecars this write replaced (newer ones are a later writer's)."""
        entry = self._locate(key)
        ours = next((sidecar for sidecar in entry.sidecars if sidecar.token == token), None)
        arrived = key.endswith("/") or (entry.file is not None and entry.file[0] == size)
        if ours is None or not (arrived or entry.newest() is not ours):
            raise Unavailable(f"{self._where(key)}: the upload did not arrive", key=key)
        for sidecar in entry.sidecars:
            if sidecar.token < token:
                self._remove(sidecar.path, key)
        mtime = entry.file[1] if entry.file is not None else ours.mtime
        return ObjectInfo(key, size, token, mtime, attrs["content_type"], dict(attrs["metadata"]))

    def _attributes(self, key: str, sidecar: _Sidecar) -> dict[str, Any]:
        """The sidecar's attributes; none if it vanished meanwhile (a concurrent write) or is unreadable."""
        try:
            with self._download(key, sidecar.path) as local:
                attrs = json.loads(Path(local).read_text())
        except (NotFound, ValueError):
            return {}
        return attrs if isinstance(attrs, dict) else {}

    @contextlib.contextmanager
    def _download(self, key: str, path: str, size: int | None = None) -> Iterator[str]:
        """GET one file into a temporary folder; a `size` given must be the download's.

        The connector writes whatever the presigned GET answered, error pages included, so the size
        the listing showed is what tells a file from an error.
        """
        with tempfile.TemporaryDirectory(prefix="objfs-clickzetta-") as folder:
            self._query(f"GET {self._volume.sql} FILE {_literal(path)} TO {_literal(folder + '/')}", key)
            local = os.path.join(folder, os.path.basename(path))
            if not os.path.isfile(local):
                raise NotFound(f"no such key: {key}", key=key)
            if size is not None and os.path.getsize(local) != size:
                raise Unavailable(f"{self._where(key)}: the download was cut or the file changed", key=key)
            yield local

    def _put(self, local: str, path: str, key: str) -> None:
        self._query(
            f"PUT {_literal(local)} TO {self._volume.sql} FILE {_literal(path)}", key, missing="volume"
        )

    def _remove(self, path: str, key: str) -> None:
        with contextlib.suppress(NotFound):
            self._query(f"REMOVE {self._volume.sql} FILE {_literal(path)}", key)

    def _query(self, sql: str, key: str | None = None, missing: str = "key") -> tuple[list[str], list[tuple]]:
        """Run one statement as a job: (column names, rows). `missing` says what a "not found" means.

        The job's id is the request id errors carry, as the service's logs know the job by it.
        """
        self._session.forget()
        cursor = None
        try:
            cursor = self._connect().cursor()
            cursor.execute(sql)
            return [column[0] for column in cursor.description or ()], cursor.fetchall()
        except StorageError:
            raise
        except Exception as exc:
            raise self._error(exc, key, missing, cursor.job_id if cursor else None) from exc
        finally:
            if cursor is not None:
                cursor.close()

    def _connect(self) -> Connection:
        """The connection, made (and logged in) at the first call rather than at mount time."""
        with self._connecting:
            if self._connection is None:
                options = {**self._login, **_protocol(self._service)}
                client = _Client(self._session, hints=dict(HINTS), **options)
                client.max_retries = 1  # also the cap of the connector's resubmission loop
                connection = Connection(client)
                client.session = self._session  # Connection() installs a shared session with retries
                self._connection = connection
            return self._connection

    # -- errors ---------------------------------------------------------------------------------

    def _error(self, exc: Exception, key: str | None, missing: str, job_id: str | None) -> StorageError:
        """One typed error from what the session saw (no answer, an HTTP status) or the job's message."""
        failure = self._session.failure
        if isinstance(failure, requests.RequestException):
            return Unavailable(f"cannot reach {self._service}: {_unreachable_reason(failure)}", key=key)
        status = failure.status_code if isinstance(failure, requests.Response) else 0
        text = one_line(exc)
        lowered = text.lower()
        if status in (401, 403) or any(word in lowered for word in _DENIED):
            return PermissionDenied(
                f"access denied to {self._where(key)}: {text}", key=key, request_id=job_id
            )
        if status >= 500 or status == 429 or any(word in lowered for word in _TIMED_OUT):
            cause = f"HTTP {status} from {self._service}" if status >= 429 else text
            return Unavailable(f"{self._where(key)}: {cause}", key=key, request_id=job_id)
        if any(words in lowered for words in _NOT_FOUND):
            message = f"volume {self.describe()} does not exist at {self._service}"
            if missing == "key" and key is not None:
                message = f"no such key: {key}"
            return NotFound(message, key=key, request_id=job_id)
        return StorageError(f"{self._where(key)}: {text}", key=key, request_id=job_id)

    def _path(self, key: str) -> str:
        return self._volume.root + key

    def _where(self, key: str | None) -> str:
        return f"{self.describe()}/{key}" if key else self.describe()


_LIST_COLUMNS = (("relative_path", 0), ("size", 2), ("last_modified_time", 3))
"""LIST's columns by name, and where the service's documentation shows them if a result has no names."""
_LOGIN_SETTINGS = {"service": SERVICE, "workspace": WORKSPACE, "vcluster": VCLUSTER, "schema": SCHEMA}


def _refuse_generic_settings(settings: Settings) -> None:
    for name in (PROXY, CA_BUNDLE):
        if name in settings:
            raise BadConfiguration(
                f"{name} is not supported by clickzetta-volume: the connector moves files with plain "
                "requests calls; set HTTPS_PROXY or REQUESTS_CA_BUNDLE in the environment instead"
            )
    for name in (SSE, STORAGE_CLASS):
        if name in settings:
            raise BadConfiguration(f"{name} is not supported by clickzetta-volume")


def _service_url(service: str) -> str:
    """`api.clickzetta.com` means https; a URL keeps its scheme (a test service speaks http)."""
    scheme, found, _ = service.partition("://")
    if not found:
        return f"https://{service.rstrip('/')}"
    if scheme not in ("http", "https"):
        raise BadConfiguration(f"{SERVICE} must be a host name or an http(s) URL")
    return service.rstrip("/")


def _protocol(service: str) -> dict[str, str]:
    """The connector's `service` and `protocol` arguments for a service URL."""
    return {"service": service, "protocol": service.partition("://")[0]}


def _check_key(key: str) -> None:
    """Refuse keys a volume path or a SQL string cannot carry faithfully, and the sidecars' folder."""
    parts = key.rstrip("/").split("/")
    if (
        not key
        or key.startswith(("/", META))
        or "//" in key
        or any(part in (".", "..") for part in parts)
        or _BAD_KEY_CHARS.intersection(key)
    ):
        raise InvalidKey(f"invalid key for a clickzetta volume: {key!r}", key=key)


def _literal(text: str) -> str:
    """A SQL string, escaped as the connector escapes the parameters it binds."""
    return "'" + (Converter.escape(text) or "") + "'"


def _identifier(name: str) -> str:
    """`schema.volume` with each part in backquotes, so names with `-` or dots in parts survive."""
    return ".".join(f"`{part}`" for part in name.split("."))


def _spool(data: Payload, target: Path) -> str:
    """The payload as a file, since PUT uploads a local file by name."""
    with open(target, "wb") as out:
        if isinstance(data, bytes | bytearray | memoryview):
            out.write(data)
        else:
            data.seek(0)
            shutil.copyfileobj(data, out, STREAM_CHUNK)
    return str(target)


def _seconds(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value)).timestamp()


def _unreachable_reason(exc: requests.RequestException) -> str:
    """Why no answer came, in words: requests nests the socket's error in urllib3's, in arguments."""
    if isinstance(exc, requests.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, requests.Timeout):
        return "no answer in time (read timed out)"
    pending: list[object] = [exc]
    seen: set[int] = set()
    while pending:
        cause = pending.pop()
        if not isinstance(cause, BaseException) or id(cause) in seen:
            continue
        seen.add(id(cause))
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "host name not found"
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
        if isinstance(cause, http.client.RemoteDisconnected):
            return "connection closed without an answer"
        pending += [cause.__cause__, cause.__context__, getattr(cause, "reason", None), *cause.args]
    return f"connection failed ({one_line(exc)})"
