"""Where the project lives, so relative settings mean the same thing from the CLI, the UI and tests."""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """The folder relative paths in settings resolve against.

    `CRM_ROI_PROJECT_ROOT` wins; otherwise the checkout the package was installed from (an editable
    install, which both README commands use); otherwise the working directory, for a wheel install.
    """
    explicit = os.environ.get("CRM_ROI_PROJECT_ROOT")
    if explicit:
        return Path(explicit).resolve()
    checkout = _PACKAGE_DIR.parent
    if (checkout / "pyproject.toml").is_file():
        return checkout
    return Path.cwd()


def resolve_path(value: str | os.PathLike[str]) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else project_root() / path


@cache
def code_digest(*folders: str) -> str:
    """A hash of the package's own .py and .sql files (below `folders`, or all of them): what a stored result
    was computed by. Cached: the code does not change while a process runs, and staging asks once per entity."""
    digest = hashlib.sha256()
    roots = [_PACKAGE_DIR / f for f in folders] if folders else [_PACKAGE_DIR]
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.suffix in (".py", ".sql"):
                digest.update(path.relative_to(_PACKAGE_DIR).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()
