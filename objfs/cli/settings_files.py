"""KEY=VALUE files: a config file (`--config`, `--env-file`, `/etc/objfs/NAME.conf`) and a
credentials file (`--credentials-file`), in the same names as the environment.

One format serves systemd's `EnvironmentFile=`, a deployment's `.env` and objfs's own files:
`KEY=VALUE` lines, `#` comments, an optional `export `, and values optionally in quotes.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Mapping

from ..errors import EXIT_USAGE, UserError

CONFIG_DIR = "/etc/objfs"
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|TOKEN|API_KEY|ACCESS_KEY|ACCOUNT_KEY|_KEY$|JSON_BASE64$)")
_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")

log = logging.getLogger(__name__)


def config_path(name: str) -> str:
    """`--config NAME` means /etc/objfs/NAME.conf; anything that looks like a path is a path."""
    if os.sep in name or name.endswith(".conf") or os.path.exists(name):
        return name
    return os.path.join(CONFIG_DIR, f"{name}.conf")


def read_settings_file(path: str, *, private: bool = False) -> dict[str, str]:
    """The settings in `path`; with `private`, refuse a file other users can read.

    A config file readable by others that holds a secret gets one warning, not a refusal: a
    world-readable `/etc/objfs/*.conf` without secrets is normal.
    """
    try:
        with open(path, encoding="utf-8") as source:
            mode = os.fstat(source.fileno()).st_mode
            text = source.read()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}", EXIT_USAGE) from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not a text file of KEY=VALUE lines", EXIT_USAGE) from None
    settings = parse_settings(text, path)
    shared = bool(mode & (stat.S_IRWXG | stat.S_IRWXO))
    if private and shared:
        raise UserError(f"{path} holds secrets but other users can read it: chmod 600 {path}", EXIT_USAGE)
    secrets = sorted(name for name in settings if SECRET_NAME.search(name))
    if shared and secrets:
        log.warning("%s is readable by other users and holds %s: chmod 600 it", path, ", ".join(secrets))
    return settings


def parse_settings(text: str, path: str) -> dict[str, str]:
    settings: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise UserError(f"{path}:{number}: expected KEY=VALUE", EXIT_USAGE)
        settings[match.group(1)] = _unquote(match.group(2).strip())
    return settings


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def storage_base(
    environment: Mapping[str, str], config_files: list[str], credentials_file: str | None
) -> dict[str, str]:
    """What the command line does not say, by precedence: credentials file, config files (later
    ones win), then the environment. The SDK's own default chain comes after all of these."""
    base = dict(environment)
    for name in config_files:
        base.update(read_settings_file(config_path(name)))
    if credentials_file:
        base.update(read_settings_file(credentials_file, private=True))
    return base
