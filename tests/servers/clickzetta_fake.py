"""A FAKE ClickZetta Lakehouse: just enough of its REST protocol for the volume commands objfs sends.

This is not ClickZetta. No public server exists (the service is proprietary), so this WSGI app speaks
the three calls `clickzetta-connector-python` makes, with the JSON shapes read from its source:
- `POST /clickzetta-portal/user/loginSingle`: password `testing` for any user gives a token; any other
  password gets HTTP 200 with a non-zero `code`, which is how the connector recognises a refused login;
- `POST /lh/submitJob`: runs the job's SQL and answers RUNNING, so the connector then polls
- `POST /lh/getJob`: the job's outcome, a result set as base64 Arrow IPC (the connector's default).

The SQL it understands is what objfs sends and nothing more (one statement per job):
`PUT '<local>' TO <volume> FILE '<path>'`, `GET <volume> FILE '<path>' TO '<dir>'`,
`LIST <volume> [SUBDIRECTORY '<dir>'] [REGEXP = '<re>']`, `REMOVE <volume> FILE '<path>'` and
`SELECT GET_PRESIGNED_URL(<volume>, '<path>', <seconds>)`, where <volume> is `USER VOLUME`,
`TABLE VOLUME <name>` or `VOLUME <name>`. PUT and GET answer as the service does, with presigned URLs
that the connector then uses itself; they point at the session's moto server (the fake presigns with
boto3). The volumes live in moto: `VOLUME v` is the bucket `v` (missing bucket, missing volume), the
user volume of each user and every table volume are folders of two buckets the fake creates.

Not modelled: workspaces, schemas, vclusters and permissions (any token reaches any volume); table
existence (every table has a volume); job queueing, cancellation, result files and paging
(`nextMarker`); PUT/GET of several files, SUBDIRECTORY transfers and options; the service's real
error codes and messages (failures say "... not found" in words of our own); token expiry. LIST's
`last_modified_time` has whole seconds, as moto's listing has (and as the service shows it).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import re
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
PASSWORD = "testing"
"""The one password the fake accepts, for every user: a fixture value, not a secret."""
LOGIN_PATH = "/clickzetta-portal/user/loginSingle"
USER_BUCKET = "clickzetta-fake-user-volumes"
TABLE_BUCKET = "clickzetta-fake-table-volumes"
_TOKEN = re.compile(r"'(?:[^'\\]|\\.)*'|`(?:[^`]|``)*`|[A-Za-z_][\w]*|\d+|[(),=.;]")
_UNESCAPE = {"n": "\n", "r": "\r", "t": "\t"}


@pytest.fixture(scope="session")
def clickzetta_endpoint(moto_endpoint: str) -> Iterator[str]:
    """One fake for the run, keeping its volumes in the session's moto server."""
    from servers.process import start_server

    command = [sys.executable, str(HERE / "clickzetta_fake.py"), "--port", "{port}", "--moto", moto_endpoint]
    server = start_server(command, "clickzetta-fake", probe_path=LOGIN_PATH)
    try:
        yield server.endpoint
    finally:
        server.stop()


class JobFailed(Exception):
    """The SQL failed; the job's status says why."""


class FakeLakehouse:
    """The WSGI app: logins, jobs and their results, all in memory except the volumes' files."""

    def __init__(self, moto_endpoint: str) -> None:
        import boto3

        self.s3 = boto3.client(
            "s3",
            endpoint_url=moto_endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        for bucket in (USER_BUCKET, TABLE_BUCKET):
            self.s3.create_bucket(Bucket=bucket)
        self.users: dict[str, tuple[str, str]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        from werkzeug.wrappers import Request, Response

        request = Request(environ)
        routes = {LOGIN_PATH: self.login, "/lh/submitJob": self.submit, "/lh/getJob": self.get_job}
        route = routes.get(request.path)
        if route is None or request.method != "POST":
            return Response("not found", status=404)(environ, start_response)
        status, body = route(request.headers, json.loads(request.get_data() or b"{}"))
        return Response(json.dumps(body), status=status, mimetype="application/json")(environ, start_response)

    def login(self, headers: Any, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body.get("password") != PASSWORD:
            return 200, {"code": 1, "message": "login failed: wrong username or password", "data": None}
        token = f"fake-token-{uuid.uuid4().hex}"
        with self.lock:
            self.users[token] = (body.get("instanceName", ""), body.get("username", ""))
        return 200, {"code": 0, "message": "success", "data": {"token": token}}

    def submit(self, headers: Any, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        user = self.users.get(headers.get("X-ClickZetta-Token", ""))
        if user is None:
            return 401, {"message": "Illegal authorization"}
        desc = body["jobDesc"]
        job_id = desc["jobId"]["id"]
        try:
            outcome = _succeeded(*self.run(user, desc["sqlJob"]["query"][0]))
        except JobFailed as exc:
            outcome = {"status": {"state": "FAILED", "errorCode": "", "errorMessage": str(exc)}}
        with self.lock:
            self.jobs[job_id] = outcome
        return 200, {"status": {"state": "RUNNING", "errorCode": ""}, "requestId": job_id}

    def get_job(self, headers: Any, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        job_id = body["get_result_request"]["job_id"]["id"]
        with self.lock:
            outcome = self.jobs.get(job_id)
        if outcome is None:
            return 200, {"status": {"state": "FAILED", "errorCode": "CZLH-60005", "errorMessage": "no job"}}
        return 200, outcome

    # -- SQL ---------------------------------------------------------------------------------

    def run(self, user: tuple[str, str], sql: str) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
        """(columns as (name, type), rows) of one statement."""
        words = _Tokens(sql)
        verb = words.word()
        if verb == "PUT":
            local = words.string()
            words.expect("TO")
            volume = self.volume(user, words)
            return self.transfer("PUT", volume, words.after("FILE"), local, "put_object")
        if verb == "GET":
            volume = self.volume(user, words)
            path = words.after("FILE")
            words.expect("TO")
            return self.transfer("GET", volume, path, words.string(), "get_object")
        if verb == "LIST":
            return self.listing(self.volume(user, words), words)
        if verb == "REMOVE":
            bucket, root, _ = self.volume(user, words)
            self.s3.delete_object(Bucket=bucket, Key=root + words.after("FILE"))
            return [("result_message", "STRING")], [("OPERATION SUCCEED",)]
        if verb == "SELECT" and words.word() == "GET_PRESIGNED_URL":
            return self.presigned_url(user, words)
        raise JobFailed(f"the fake lakehouse does not model this statement: {sql}")

    def volume(self, user: tuple[str, str], words: _Tokens) -> tuple[str, str, str]:
        """(bucket, key prefix, the volume as SQL names it) of `USER VOLUME`, `TABLE VOLUME t`, `VOLUME v`."""
        kind = words.word()
        if kind == "USER":
            words.expect("VOLUME")
            instance, username = user
            return USER_BUCKET, f"{instance}/{username}/", "USER VOLUME"
        if kind == "TABLE":
            words.expect("VOLUME")
            table = words.name()
            return TABLE_BUCKET, f"{user[0]}/{table}/", f"TABLE VOLUME {table}"
        if kind != "VOLUME":
            raise JobFailed(f"expected a volume, found {kind}")
        name = words.name()
        try:
            self.s3.head_bucket(Bucket=name)
        except Exception as exc:
            raise JobFailed(f"volume {name} not found") from exc
        return name, "", f"VOLUME {name}"

    def transfer(
        self, command: str, volume: tuple[str, str, str], path: str, local: str, operation: str
    ) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
        """PUT and GET answer a ticket of presigned URLs, and the client moves the bytes itself."""
        bucket, root, identifier = volume
        if command == "GET" and not self._exists(bucket, root + path):
            raise JobFailed(f"file {path} not found in {identifier}")
        url = self.s3.generate_presigned_url(operation, Params={"Bucket": bucket, "Key": root + path})
        outcome = {
            "status": "SUCCESS",
            "request": {
                "command": command,
                "localPaths": [local],
                "volumeIdentifier": identifier,
                "file": path,
                "options": [],
            },
            "ticket": {"presignedUrls": [url]},
            "nextMarker": "",
        }
        return [("outcome", "STRING")], [(json.dumps(outcome),)]

    def listing(
        self, volume: tuple[str, str, str], words: _Tokens
    ) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
        bucket, root, _ = volume
        subdirectory, pattern = "", None
        while (option := words.word(optional=True)) is not None:
            if option == "SUBDIRECTORY":
                subdirectory = words.string().strip("/")
                subdirectory += "/" if subdirectory else ""
            elif option == "REGEXP":
                words.expect("=")
                pattern = re.compile(words.string())
            else:
                raise JobFailed(f"LIST option {option} is not modelled")
        rows = []
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=root + subdirectory)
        for page in pages:
            for item in page.get("Contents", []):
                path = item["Key"][len(root) :]
                if pattern is None or pattern.search(path):
                    rows.append((path, f"s3://{bucket}/{item['Key']}", item["Size"], item["LastModified"]))
        columns = [
            ("relative_path", "STRING"),
            ("url", "STRING"),
            ("size", "INT64"),
            ("last_modified_time", "TIMESTAMP_LTZ"),
        ]
        return columns, rows

    def presigned_url(
        self, user: tuple[str, str], words: _Tokens
    ) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
        words.expect("(")
        bucket, root, _ = self.volume(user, words)
        words.expect(",")
        path = words.string()
        words.expect(",")
        expires = int(words.word())
        url = self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": root + path}, ExpiresIn=expires
        )
        return [("url", "STRING")], [(url,)]

    def _exists(self, bucket: str, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=bucket, Key=key)
        except Exception:
            return False
        return True


class _Tokens:
    """The statement's words, strings (backslash escapes, as the connector writes them) and names."""

    def __init__(self, sql: str) -> None:
        self.tokens = [t for t in _TOKEN.findall(sql.strip().rstrip(";")) if t != ";"]
        self.at = 0

    def word(self, optional: bool = False) -> str | None:
        if self.at >= len(self.tokens):
            if optional:
                return None
            raise JobFailed("unexpected end of statement")
        self.at += 1
        token = self.tokens[self.at - 1]
        return token.upper() if token[0].isalpha() else token

    def expect(self, word: str) -> None:
        found = self.word()
        if found != word:
            raise JobFailed(f"expected {word}, found {found}")

    def after(self, word: str) -> str:
        self.expect(word)
        return self.string()

    def string(self) -> str:
        token = self.tokens[self.at] if self.at < len(self.tokens) else ""
        if not token.startswith("'"):
            raise JobFailed(f"expected a string, found {token or 'nothing'}")
        self.at += 1
        return re.sub(r"\\(.)", lambda m: _UNESCAPE.get(m.group(1), m.group(1)), token[1:-1])

    def name(self) -> str:
        """A possibly qualified name; the fake keeps only its last part (no schemas here)."""
        parts = [self._part()]
        while self.at < len(self.tokens) and self.tokens[self.at] == ".":
            self.at += 1
            parts.append(self._part())
        return parts[-1]

    def _part(self) -> str:
        token = self.tokens[self.at]
        self.at += 1
        return token[1:-1].replace("``", "`") if token.startswith("`") else token


def _succeeded(columns: list[tuple[str, str]], rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """A finished job's answer: the result set embedded as one base64 Arrow IPC stream."""
    import pyarrow as pa

    arrow_types = {"STRING": pa.string(), "INT64": pa.int64(), "TIMESTAMP_LTZ": pa.timestamp("us", tz="UTC")}
    schema = pa.schema([(name, arrow_types[kind]) for name, kind in columns])
    table = pa.Table.from_pylist([dict(zip(schema.names, row, strict=True)) for row in rows], schema=schema)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_table(table)
    fields = [{"name": name, "type": _field_type(kind)} for name, kind in columns]
    return {
        "status": {"state": "SUCCEED", "errorCode": "", "message": "SUCCEED"},
        "resultSet": {
            "metadata": {"fields": fields, "format": "ARROW", "timeZone": "UTC"},
            "data": {"data": [base64.b64encode(sink.getvalue()).decode()] if rows else []},
        },
    }


def _field_type(kind: str) -> dict[str, Any]:
    if kind == "TIMESTAMP_LTZ":
        return {"category": kind, "nullable": True, "timestampInfo": {"tsUnit": "MICROSECONDS"}}
    return {"category": kind, "nullable": True}


def main() -> None:
    from werkzeug.serving import run_simple

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--moto", required=True, help="the moto endpoint that holds the volumes")
    options = parser.parse_args()
    run_simple("127.0.0.1", options.port, FakeLakehouse(options.moto), threaded=True)


if __name__ == "__main__":
    sys.path[0] = str(HERE.parent)  # tests/, not servers/, whose moto.py would shadow moto itself
    main()
