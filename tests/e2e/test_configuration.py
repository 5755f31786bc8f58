"""Three ways to name a bucket, one result: a SOURCE URL with flags, the seed's environment
variables, and a KEY=VALUE config file; secrets only from the environment or a 0600 file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mounting import mounted, objfs
from servers.moto import start_moto
from test_bad_input import assert_refused

from objfs.errors import EXIT_ACCESS_DENIED, EXIT_USAGE

pytestmark = pytest.mark.fuse


@pytest.fixture
def s3_settings(moto_endpoint: str, s3_bucket: str) -> dict[str, str]:
    return {
        "STORAGE_TYPE": "s3",
        "S3_ENDPOINT": moto_endpoint,
        "S3_REGION": "us-east-1",
        "S3_BUCKET_NAME": s3_bucket,
        "S3_ACCESS_KEY": "testing",
        "S3_SECRET_KEY": "testing",
    }


def write_settings(path: Path, settings: dict[str, str], mode: int = 0o600) -> Path:
    lines = ["# objfs settings, as systemd's EnvironmentFile= reads them", ""]
    lines += [f'export {name}="{value}"' for name, value in settings.items()]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(mode)
    return path


def test_url_environment_and_config_file_mount_the_same_bucket(
    tmp_path: Path, s3_settings: dict[str, str], s3_env: dict[str, str]
) -> None:
    bucket, endpoint = s3_settings["S3_BUCKET_NAME"], s3_settings["S3_ENDPOINT"]
    with mounted(f"s3://{bucket}/shared", tmp_path / "url", s3_env, "--endpoint", endpoint) as mount:
        (mount.path / "from-url.txt").write_text("one")
    environment = {**s3_settings, "STORAGE_PREFIX": "shared"}
    with mounted(None, tmp_path / "env", environment) as mount:
        assert (mount.path / "from-url.txt").read_text() == "one"
        (mount.path / "from-env.txt").write_text("two")
    config = write_settings(tmp_path / "bucket.conf", {**s3_settings, "STORAGE_PREFIX": "shared"})
    with mounted(None, tmp_path / "conf", {}, "--config", str(config)) as mount:
        assert sorted(os.listdir(mount.path)) == ["from-env.txt", "from-url.txt"]


def test_the_command_line_wins_over_the_config_file_which_wins_over_the_environment(
    tmp_path: Path, s3_settings: dict[str, str]
) -> None:
    config = write_settings(tmp_path / "c.conf", {**s3_settings, "STORAGE_PREFIX": "from-config"})
    environment = {**s3_settings, "STORAGE_PREFIX": "from-environment", "S3_BUCKET_NAME": "no-such-bucket"}
    with mounted(None, tmp_path / "a", environment, "--config", str(config)) as mount:
        (mount.path / "f").write_text("x")
    bucket = s3_settings["S3_BUCKET_NAME"]
    with mounted(f"s3://{bucket}/from-config", tmp_path / "b", environment, "--config", str(config)) as mount:
        assert os.listdir(mount.path) == ["f"]


def test_secrets_come_from_a_private_credentials_file(tmp_path: Path, s3_settings: dict[str, str]) -> None:
    secrets = {name: s3_settings.pop(name) for name in ("S3_ACCESS_KEY", "S3_SECRET_KEY")}
    credentials = write_settings(tmp_path / "credentials", secrets, mode=0o600)
    with mounted(None, tmp_path / "m", s3_settings, "--credentials-file", str(credentials)) as mount:
        (mount.path / "f").write_text("x")

    credentials.chmod(0o644)
    mountpoint = str(tmp_path / "m" / "mnt")
    result = objfs("mount", mountpoint, "--credentials-file", str(credentials), env=s3_settings)
    assert_refused(result, EXIT_USAGE, "other users can read it", "chmod 600")


def test_config_file_mistakes_name_the_line(tmp_path: Path) -> None:
    (tmp_path / "mnt").mkdir()
    bad = tmp_path / "bad.conf"
    bad.write_text("STORAGE_TYPE=local\nthis is not a setting\n")
    result = objfs("mount", str(tmp_path / "mnt"), "--config", str(bad))
    assert_refused(result, EXIT_USAGE, f"{bad}:2: expected KEY=VALUE")
    result = objfs("mount", str(tmp_path / "mnt"), "--config", "objfs-test-no-such-name")
    assert_refused(result, EXIT_USAGE, "/etc/objfs/objfs-test-no-such-name.conf")


def test_without_a_source_storage_type_is_required(tmp_path: Path) -> None:
    (tmp_path / "mnt").mkdir()
    env = {name: value for name, value in os.environ.items() if name != "STORAGE_TYPE"}
    result = objfs("mount", str(tmp_path / "mnt"), env={**env, "STORAGE_TYPE": ""})
    assert_refused(result, EXIT_USAGE, "STORAGE_TYPE is not set")
    result = objfs("mount", str(tmp_path / "mnt"), env={"STORAGE_TYPE": "ftp"})
    assert_refused(result, EXIT_USAGE, "unknown STORAGE_TYPE 'ftp'", "aliyun-oss")


def test_wrong_keys_from_the_environment_are_never_printed(
    tmp_path: Path, s3_settings: dict[str, str], request: pytest.FixtureRequest
) -> None:
    server = start_moto(auth=True)
    request.addfinalizer(server.stop)
    (tmp_path / "mnt").mkdir()
    env = {**s3_settings, "S3_ENDPOINT": server.endpoint, "S3_SECRET_KEY": "wrong-secret-value"}
    result = objfs("mount", str(tmp_path / "mnt"), "--cache-dir", str(tmp_path / "cache"), env=env)
    assert_refused(result, EXIT_ACCESS_DENIED, "credentials were rejected")
    assert "wrong-secret-value" not in result.stderr
