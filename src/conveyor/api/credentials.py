"""``--credentials FILE``: the principals that may call the SQS API, each with its access key, its secret and its
policy, for SigV4 verification (``sigv4.py``) and permissions (``core.iam``).

```yaml
principals:
  web:                                   # the principal's name: arn:aws:iam::ACCOUNT:user/web
    access_key_id: AKIAWEBTIER000000001  # 16 to 128 letters and digits
    secret_access_key: ...               # 16 characters or more
    policy:                              # IAM's policy document, in YAML or in JSON
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Action: [sqs:SendMessage, sqs:GetQueueUrl, sqs:GetQueueAttributes]
          Resource: arn:aws:sqs:*:*:jobs
```

The file holds secrets, so it must be readable by its owner only (mode 0600 or stricter) or it is refused. It is read
at start, and again on SIGHUP (``Keyring.reload``): requests in progress keep the principals they started with, and
a file with a mistake is refused while the principals before it stay.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from conveyor.config.nodes import at, keyed, load, value
from conveyor.core.iam import Policy, parse_policy
from conveyor.errors import ConfigError

#: IAM's rule for access key ids (16 to 128 word characters); conveyor's own are letters and digits.
ACCESS_KEY_ID = re.compile(r"^[A-Za-z0-9]{16,128}$")
NAME = re.compile(r"^[A-Za-z0-9+=,.@_-]{1,64}$")
MIN_SECRET_CHARS = 16
PRINCIPAL_KEYS = ("access_key_id", "secret_access_key", "policy")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who signs with ``access_key_id``, and what its ``policy`` allows."""

    name: str
    access_key_id: str
    secret_access_key: str
    policy: Policy

    def arn(self, account_id: str) -> str:
        return f"arn:aws:iam::{account_id}:user/{self.name}"


def load_principals(path: Path) -> dict[str, Principal]:
    """The principals of the credentials file at ``path``, by access key id; ``ConfigError`` for any mistake, with
    the line and the fix."""
    label = str(path)
    try:
        mode = path.stat().st_mode
    except OSError as error:
        raise ConfigError(f"--credentials {path}: cannot be read ({error.strerror or error}).") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"--credentials {path} can be read by other users (mode {stat.S_IMODE(mode):04o}) and it holds secret "
            f"keys: run chmod 600 {path}."
        )
    root = load(path, label)
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{label}: expected 'principals:' with one entry per principal (see docs/security.md).")
    top = keyed(root, label, "the credentials file", ("principals",))
    if "principals" not in top or not isinstance(top["principals"][1], yaml.MappingNode):
        raise ConfigError(f"{label}: principals: expected a mapping of names to access_key_id, secret and policy.")
    by_key: dict[str, Principal] = {}
    for name, (key, node) in keyed(top["principals"][1], label, "principals").items():
        principal = _principal(name, key, node, label)
        if principal.access_key_id in by_key:
            other = by_key[principal.access_key_id].name
            raise ConfigError(f"{at(label, key)}: {name}: its access_key_id is {other}'s too; give each its own.")
        by_key[principal.access_key_id] = principal
    return by_key


def _principal(name: str, key: yaml.Node, node: yaml.Node, label: str) -> Principal:
    where = at(label, key)
    if not NAME.match(name):
        raise ConfigError(f"{where}: {name!r} cannot name a principal: use letters, digits and +=,.@_- (up to 64).")
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{where}: {name}: expected access_key_id, secret_access_key and policy.")
    fields = keyed(node, label, f"principal {name}", PRINCIPAL_KEYS)
    missing = [k for k in PRINCIPAL_KEYS if k not in fields]
    if missing:
        raise ConfigError(f"{where}: {name}: {', '.join(missing)} missing.")
    key_id = value(fields["access_key_id"][1], label, "access_key_id")
    if not isinstance(key_id, str) or not ACCESS_KEY_ID.match(key_id):
        raise ConfigError(
            f"{at(label, fields['access_key_id'][0])}: {name}: access_key_id must be 16 to 128 letters and digits."
        )
    secret = value(fields["secret_access_key"][1], label, "secret_access_key")
    if not isinstance(secret, str) or len(secret) < MIN_SECRET_CHARS:
        raise ConfigError(
            f"{at(label, fields['secret_access_key'][0])}: {name}: secret_access_key must be a string of "
            f"{MIN_SECRET_CHARS} characters or more."
        )
    document = yaml.safe_load(yaml.serialize(fields["policy"][1]))
    if not isinstance(document, Mapping):
        raise ConfigError(f"{at(label, fields['policy'][0])}: {name}: policy must be an IAM policy document.")
    policy = parse_policy(document, where=f"{at(label, fields['policy'][0])}, principal {name}", kind="identity")
    return Principal(name, key_id, secret, policy)


class Keyring:
    """The principals of one credentials file, read again on ``reload``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.principals = load_principals(path)

    def find(self, access_key_id: str) -> Principal | None:
        return self.principals.get(access_key_id)

    def reload(self) -> str | None:
        """Read the file again; the refusal's message when it has a mistake (the principals before stay)."""
        try:
            principals = load_principals(self.path)
        except ConfigError as error:
            return error.message
        self.principals = principals
        return None
