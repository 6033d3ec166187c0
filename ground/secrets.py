"""Secrets from configuration: the value itself, else the content of its file; never logged."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from ground.errors import InputError


def read_secret(value: SecretStr | None, path: Path | None, where: str) -> SecretStr | None:
    """The secret itself, else the content of its file (stripped); InputError names the key."""
    if value is not None:
        return value if value.get_secret_value().strip() else None
    if path is None:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InputError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    if not text:
        raise InputError(f"{where}: {path} is empty")
    return SecretStr(text)
