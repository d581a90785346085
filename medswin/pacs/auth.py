"""Credentials for DICOMweb nodes: from the environment or a file, never from the command line.

* ``MEDSWIN_PACS_TOKEN``: a bearer token;
* ``MEDSWIN_PACS_USER`` + ``MEDSWIN_PACS_PASSWORD``: HTTP basic authentication;
* ``MEDSWIN_PACS_AUTH_FILE``: a JSON file ``{"token": ...}`` or ``{"user": ..., "password": ...}``
  (keep it readable by its owner only; a file others can read is refused).

A :class:`Credentials` never shows its secrets: not in ``repr``, not in error messages.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medswin.errors import PacsError

__all__ = ["Credentials", "load_credentials", "make_session"]

ENV_TOKEN = "MEDSWIN_PACS_TOKEN"
ENV_USER = "MEDSWIN_PACS_USER"
ENV_PASSWORD = "MEDSWIN_PACS_PASSWORD"
ENV_FILE = "MEDSWIN_PACS_AUTH_FILE"


@dataclass(frozen=True)
class Credentials:
    """Basic (user + password) or bearer (token) credentials; ``repr`` hides the secrets."""

    user: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)

    @property
    def kind(self) -> str:
        return "bearer" if self.token else "basic" if self.user else "none"

    def __repr__(self) -> str:
        return f"Credentials(kind={self.kind!r})"


def _from_file(path: Path) -> Credentials:
    try:
        mode = path.stat().st_mode
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not JSON"
        raise PacsError(f"{path} ({ENV_FILE}): cannot read the PACS credentials ({reason})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PacsError(f"{path} ({ENV_FILE}): readable by others; chmod 600 it")
    if not isinstance(data, dict) or not (
        isinstance(data.get("token"), str) or isinstance(data.get("user"), str)
    ):
        raise PacsError(f'{path} ({ENV_FILE}): expected {{"token": ...}} or {{"user": ..., "password": ...}}')
    return Credentials(
        user=str(data.get("user", "")),
        password=str(data.get("password", "")),
        token=str(data.get("token", "")),
    )


def load_credentials(environ: Mapping[str, str] | None = None) -> Credentials:
    """The DICOMweb credentials the environment names (see the module docstring); none when unset."""
    env = os.environ if environ is None else environ
    if env.get(ENV_FILE):
        return _from_file(Path(env[ENV_FILE]).expanduser())
    if env.get(ENV_TOKEN):
        return Credentials(token=env[ENV_TOKEN])
    if env.get(ENV_USER):
        return Credentials(user=env[ENV_USER], password=env.get(ENV_PASSWORD, ""))
    return Credentials()


def make_session(credentials: Credentials, ca_bundle: str | Path | None = None) -> Any:
    """A ``requests.Session`` that authenticates with ``credentials`` and verifies TLS with ``ca_bundle``.

    Args:
        ca_bundle: a PEM file of the certificate authorities to trust (a hospital's own CA);
            None: the system's default trust store.
    """
    import requests

    class _Session(requests.Session):
        """A session whose ``verify`` wins over ``REQUESTS_CA_BUNDLE`` (which plain requests lets override it)."""

        def merge_environment_settings(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            settings = super().merge_environment_settings(*args, **kwargs)
            if isinstance(self.verify, str):
                settings["verify"] = self.verify
            return settings

    session = _Session()
    if credentials.token:
        session.headers["Authorization"] = f"Bearer {credentials.token}"
    elif credentials.user:
        session.auth = (credentials.user, credentials.password)
    if ca_bundle is not None:
        bundle = Path(ca_bundle).expanduser()
        if not bundle.is_file():
            raise PacsError(f"{bundle}: --ca-bundle must be a PEM file of trusted certificate authorities")
        session.verify = str(bundle)
    return session
