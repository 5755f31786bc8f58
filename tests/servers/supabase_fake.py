"""A FAKE of Supabase Storage's REST API: an in-repo stand-in, not Supabase's server.

The real server (github.com/supabase/storage) needs Postgres and its migrations, and the Supabase
CLI runs it only under Docker, so none can run here. This small in-memory WSGI app answers the
endpoints storage3 and objfs's raw requests use, shaped on that server's routes
(src/http/routes/object, src/http/routes/bucket) and error codes (src/internal/errors/codes.ts):

- errors are HTTP 400 with the real status in the body, `{"statusCode": "404", "code": "NoSuchKey",
  "error": "not_found", "message": "Object not found"}`, except 5xx, as the server's error handler
  answers;
- `Authorization: Bearer <key>` must carry the key the fake was started with; anything else is the
  server's answer to a JWT it cannot verify (statusCode 403, "invalid signature");
- uploads are POST `object/<bucket>/<name>` as multipart form data (file, `metadata` JSON,
  `cacheControl`) or a binary body (`x-metadata`: base64 JSON), creating only unless `x-upsert: true`;
- `object/list/<bucket>` lists one folder level as `storage.search` does: sub-folders (id null)
  first, then files, each sorted by name, paged by limit and offset, filtered by `search`;
- `object/copy` honours `x-upsert`, `x-metadata` and `copyMetadata`; GET honours Range;
  `object/sign` makes HMAC tokens that GET `object/sign/<bucket>/<name>?token=` accepts.

Not modelled: row-level security and roles (the one key may do everything), real JWTs, ILIKE
matching of listing prefixes (the fake matches them literally and case-sensitively), size and
MIME-type limits (including the zero-byte limit on `.emptyFolderPlaceholder`), caching headers,
object versions, public buckets, TUS, image transforms, `list-v2`, `move`, and the S3 protocol.
Run: `python supabase_fake.py PORT KEY`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from werkzeug.exceptions import HTTPException, RequestedRangeNotSatisfiable
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

HERE = Path(__file__).resolve().parent
API_KEY = "testing-supabase-service-key"
"""The key the session's fake accepts: obviously fake."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class _Object:
    name: str
    data: bytes
    mimetype: str
    cache_control: str
    user_metadata: dict[str, Any] | None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)
    modified: float = field(default_factory=time.time)

    @property
    def etag(self) -> str:
        return f'"{hashlib.md5(self.data).hexdigest()}"'

    def system_metadata(self) -> dict[str, Any]:
        return {
            "eTag": self.etag,
            "size": len(self.data),
            "mimetype": self.mimetype,
            "cacheControl": self.cache_control,
            "lastModified": self.updated_at,
            "contentLength": len(self.data),
            "httpStatusCode": 200,
        }

    def row(self, bucket: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "bucket_id": bucket,
            "owner": None,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "last_accessed_at": self.updated_at,
            "metadata": self.system_metadata(),
            "user_metadata": self.user_metadata,
        }


class _Failure(Exception):
    """An error answer, as the server's error handler renders a StorageBackendError."""

    def __init__(self, status: int, code: str, error: str, message: str) -> None:
        super().__init__(message)
        self.body = {"statusCode": str(status), "code": code, "error": error, "message": message}
        self.http_status = 500 if status >= 500 else 400


def _not_found() -> _Failure:
    return _Failure(404, "NoSuchKey", "not_found", "Object not found")


def _no_bucket() -> _Failure:
    return _Failure(404, "NoSuchBucket", "Bucket not found", "Bucket not found")


def _duplicate() -> _Failure:
    return _Failure(409, "KeyAlreadyExists", "Duplicate", "The resource already exists")


class FakeSupabaseStorage:
    """The buckets and their objects, behind one lock: requests arrive on many threads."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.signing_key = uuid.uuid4().bytes
        self.buckets: dict[str, dict[str, _Object]] = {}
        self.created: dict[str, str] = {}
        self.lock = threading.Lock()
        self.urls = Map(
            [
                Rule("/storage/v1/bucket", methods=["POST"], endpoint="create_bucket"),
                Rule("/storage/v1/bucket/<bucket>", methods=["GET"], endpoint="get_bucket"),
                Rule("/storage/v1/object/list/<bucket>", methods=["POST"], endpoint="list_objects"),
                Rule("/storage/v1/object/copy", methods=["POST"], endpoint="copy_object"),
                Rule("/storage/v1/object/info/<bucket>/<path:name>", methods=["GET"], endpoint="info"),
                Rule("/storage/v1/object/sign/<bucket>/<path:name>", methods=["POST"], endpoint="sign"),
                Rule("/storage/v1/object/sign/<bucket>/<path:name>", methods=["GET"], endpoint="signed_get"),
                Rule("/storage/v1/object/<bucket>", methods=["DELETE"], endpoint="delete_objects"),
                Rule("/storage/v1/object/<bucket>/<path:name>", methods=["POST"], endpoint="upload"),
                Rule("/storage/v1/object/<bucket>/<path:name>", methods=["GET"], endpoint="download"),
            ],
            strict_slashes=False,
            merge_slashes=False,
        )

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        try:
            endpoint, args = self.urls.bind_to_environ(environ).match()
            if endpoint != "signed_get":
                self._authorize(request)
            with self.lock:
                response = getattr(self, endpoint)(request, **args)
        except _Failure as failure:
            response = Response(json.dumps(failure.body), failure.http_status, mimetype="application/json")
        except HTTPException as exc:  # routing misses
            response = exc.get_response(environ)
        response.headers["sb-request-id"] = str(uuid.uuid4())
        return response(environ, start_response)

    def _authorize(self, request: Request) -> None:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            raise _Failure(403, "AccessDenied", "Unauthorized", "invalid signature")

    def _bucket(self, bucket: str) -> dict[str, _Object]:
        objects = self.buckets.get(bucket)
        if objects is None:
            raise _no_bucket()
        return objects

    def _object(self, bucket: str, name: str) -> _Object:
        found = self._bucket(bucket).get(name)
        if found is None:
            raise _not_found()
        return found

    # -- buckets --------------------------------------------------------------------------

    def create_bucket(self, request: Request) -> Response:
        body = request.get_json()
        if body["id"] in self.buckets:
            raise _Failure(409, "BucketAlreadyExists", "Duplicate", "The resource already exists")
        self.buckets[body["id"]] = {}
        self.created[body["id"]] = _now()
        return _json({"name": body["id"]})

    def get_bucket(self, request: Request, bucket: str) -> Response:
        self._bucket(bucket)
        created = self.created[bucket]
        return _json(
            {
                "id": bucket,
                "name": bucket,
                "owner": "",
                "public": False,
                "file_size_limit": None,
                "allowed_mime_types": None,
                "created_at": created,
                "updated_at": created,
            }
        )

    # -- objects --------------------------------------------------------------------------

    def upload(self, request: Request, bucket: str, name: str) -> Response:
        objects = self._bucket(bucket)
        if name in objects and request.headers.get("x-upsert") != "true":
            raise _duplicate()
        if request.mimetype == "multipart/form-data":
            file = request.files["file"]
            data, mimetype = file.read(), file.mimetype or "application/octet-stream"
            metadata = _json_or_none(request.form.get("metadata"))
            cache = request.form.get("cacheControl")
            cache_control = f"max-age={cache}" if cache else "no-cache"
        else:
            data, mimetype = request.get_data(), request.mimetype or "application/octet-stream"
            metadata = _base64_json(request.headers.get("x-metadata"))
            cache_control = request.headers.get("cache-control", "no-cache")
        stored = _Object(name, data, mimetype, cache_control, metadata)
        if name in objects:
            stored.id, stored.created_at = objects[name].id, objects[name].created_at
        objects[name] = stored
        return _json({"Key": f"{bucket}/{name}", "Id": stored.id})

    def info(self, request: Request, bucket: str, name: str) -> Response:
        found = self._object(bucket, name)
        return _json(
            {
                "id": found.id,
                "name": found.name,
                "version": found.id,
                "bucket_id": bucket,
                "size": len(found.data),
                "content_type": found.mimetype,
                "cache_control": found.cache_control,
                "etag": found.etag,
                "metadata": found.user_metadata,
                "last_modified": found.updated_at,
                "created_at": found.created_at,
            }
        )

    def download(self, request: Request, bucket: str, name: str) -> Response:
        return _body(request, self._object(bucket, name))

    def copy_object(self, request: Request) -> Response:
        body = request.get_json()
        objects = self._bucket(body["bucketId"])
        source = self._object(body["bucketId"], body["sourceKey"])
        destination = body["destinationKey"]
        if destination in objects and request.headers.get("x-upsert") != "true":
            raise _duplicate()
        given = _base64_json(request.headers.get("x-metadata"))
        kept = source.user_metadata if body.get("copyMetadata", True) else given
        mimetype = (body.get("metadata") or {}).get("mimetype") or source.mimetype
        copied = _Object(destination, source.data, mimetype, source.cache_control, kept)
        objects[destination] = copied
        return _json(
            {"Id": copied.id, "Key": f"{body['bucketId']}/{destination}", **copied.row(body["bucketId"])}
        )

    def delete_objects(self, request: Request, bucket: str) -> Response:
        objects = self._bucket(bucket)
        removed = [objects.pop(name) for name in request.get_json()["prefixes"] if name in objects]
        return _json([found.row(bucket) for found in removed])

    def list_objects(self, request: Request, bucket: str) -> Response:
        """`storage.search`: the folder's sub-folders, then its files, then limit and offset."""
        objects = self._bucket(bucket)
        body = request.get_json()
        prefix = body.get("prefix") or ""
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        level = prefix + (body.get("search") or "")
        folders: set[str] = set()
        files: list[_Object] = []
        for name, found in objects.items():
            if not name.startswith(level):
                continue
            child, slash, _ = name[len(prefix) :].partition("/")
            if slash:
                folders.add(child)
            else:
                files.append(found)
        rows = [_folder_row(child) for child in sorted(folders)]
        rows += [
            {**found.row(bucket), "name": found.name[len(prefix) :]} for found in sorted(files, key=_by_name)
        ]
        offset = int(body.get("offset") or 0)
        return _json(rows[offset : offset + int(body.get("limit") or 100)])

    # -- signed URLs ----------------------------------------------------------------------

    def sign(self, request: Request, bucket: str, name: str) -> Response:
        self._object(bucket, name)
        expires = int(time.time()) + int(request.get_json()["expiresIn"])
        claims = base64.urlsafe_b64encode(json.dumps({"url": f"{bucket}/{name}", "exp": expires}).encode())
        token = f"{claims.decode()}.{self._signature(claims)}"
        path = quote(f"{bucket}/{name}")
        return _json({"signedURL": f"/object/sign/{path}?token={token}"})

    def signed_get(self, request: Request, bucket: str, name: str) -> Response:
        claims, _, signature = request.args.get("token", "").encode().partition(b".")
        valid = hmac.compare_digest(signature, self._signature(claims).encode())
        decoded = json.loads(base64.urlsafe_b64decode(claims)) if valid else {}
        if decoded.get("url") != f"{bucket}/{name}" or decoded.get("exp", 0) < time.time():
            raise _Failure(400, "InvalidSignature", "InvalidSignature", "Invalid signature")
        return _body(request, self._object(bucket, name))

    def _signature(self, claims: bytes) -> str:
        return hmac.new(self.signing_key, claims, hashlib.sha256).hexdigest()


def _body(request: Request, found: _Object) -> Response:
    """The object, or the byte range asked for (S3's InvalidRange past the end, passed on)."""
    response = Response(found.data, mimetype=found.mimetype)
    response.headers["ETag"] = found.etag
    response.headers["Last-Modified"] = formatdate(found.modified, usegmt=True)
    response.headers["Cache-Control"] = found.cache_control
    try:
        response.make_conditional(request, accept_ranges=True, complete_length=len(found.data))
    except RequestedRangeNotSatisfiable:
        raise _Failure(
            416, "InvalidRange", "InvalidRange", "The requested range is not satisfiable"
        ) from None
    return response


def _folder_row(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "id": None,
        "updated_at": None,
        "created_at": None,
        "last_accessed_at": None,
        "metadata": None,
    }


def _by_name(found: _Object) -> str:
    return found.name


def _json(value: Any) -> Response:
    return Response(json.dumps(value), mimetype="application/json")


def _json_or_none(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _base64_json(text: str | None) -> Any:
    try:
        return json.loads(base64.b64decode(text)) if text else None
    except ValueError:
        return None


def serve(port: int, api_key: str) -> None:
    from werkzeug.serving import run_simple

    run_simple("127.0.0.1", port, FakeSupabaseStorage(api_key), threaded=True)


@pytest.fixture(scope="session")
def supabase_endpoint() -> Iterator[str]:
    """One fake for the run (a project URL, without /storage/v1); fresh buckets keep tests apart."""
    from servers.process import start_server

    command = [sys.executable, str(Path(__file__)), "{port}", API_KEY]
    server = start_server(command, "supabase-fake", probe_path="/storage/v1/bucket/probe")
    try:
        yield server.endpoint
    finally:
        server.stop()


if __name__ == "__main__":
    sys.path[0] = str(HERE.parent)  # tests/, not servers/, whose modules would shadow installed ones
    serve(int(sys.argv[1]), sys.argv[2])
