"""Files written beside the database for other readers (the Parquet copies, the report and its charts):
each written whole or not at all, so a reader never sees half a file."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import duckdb

from crm_roi_pipeline.errors import CrmRoiError


def publish_parquet(conn: duckdb.DuckDBPyConnection, table: str, folder: Path) -> Path:
    """A read-only copy of a published table, written beside and then renamed over the last one, so a
    reader never sees half a file."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{table.replace('.', '_')}.parquet"
    partial = target.with_suffix(".parquet.partial")
    try:
        conn.execute(f"COPY {table} TO '{partial}' (FORMAT parquet)")
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)  # a full disk leaves the last copy, and no half file beside it
        raise
    return target


def replace_file(path: Path, content: bytes | str | Callable[[Path], object]) -> Path:
    """Write `path` whole or not at all: `content` (bytes, text as UTF-8, or a function that writes the file
    it is given) goes to a temporary file in the same folder, which is then renamed over `path`
    (`os.replace`, atomic on one file system). A failure or a full disk leaves the old file as it was and no
    temporary file behind; a reader sees the old file or the new one, never a cut-off one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Unique per process and thread, so two runs writing the same report never share a temporary file.
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
    try:
        if isinstance(content, bytes):
            partial.write_bytes(content)
        elif isinstance(content, str):
            partial.write_text(content, encoding="utf-8")
        else:
            content(partial)
        with open(partial, "rb") as written:  # on disk before the rename, so a power cut cannot empty it
            os.fsync(written.fileno())
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise CrmRoiError(
            f"{path}: cannot be written ({exc.strerror or exc}); the previous one is kept as it was. Fix: free "
            "space on that disk or give this user write access to the folder (CRM_ROI_REPORTS_DIR moves the "
            "reports), then rerun."
        ) from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path
