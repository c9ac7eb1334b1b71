"""Dagster resources: the DuckDB file, the pipeline's settings and the assumptions file.

Values come from the environment through `EnvVar` (see `definitions.py`), so the UI shows which variable
a setting came from and never its secret value.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from dagster import ConfigurableResource
from dagster_duckdb import DuckDBResource
from filelock import FileLock, Timeout
from pydantic import Field

from crm_roi_pipeline.errors import CrmRoiError, SettingsError
from crm_roi_pipeline.project import resolve_path
from crm_roi_pipeline.settings import DEFAULTS, Assumptions, load_assumptions
from crm_roi_pipeline.sources.registry import API_SOURCES, parse_sources
from crm_roi_pipeline.sql_files import read_sql

_ATTACHED_AS = "crm_roi"
# config -> [in-memory DuckDB instance, connections open on it]
_instances: dict[tuple, list] = {}
_instances_lock = threading.Lock()


@contextmanager
def _attached(config: dict, path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to this process's in-memory DuckDB for `config`, with the file at `path` attached.

    Starting a DuckDB instance costs ~23 ms and a `crm-roi run` opens some twenty-five connections, so the
    instance of the configuration last used is kept (one per database file: its temp directory is beside it),
    and each connection attaches the file and detaches it again: 0.5 s of the ~11 s warm sample run
    (benchmarks/sample_run.py, 9 interleaved runs, median paired difference). The caller's file lock makes the
    connections to one file take turns, so the attached name never clashes."""
    key = tuple(sorted((name, str(value)) for name, value in config.items()))
    with _instances_lock:
        entry = _instances.get(key)
        if entry is None:
            for other in [k for k, (_, users) in _instances.items() if users == 0]:
                _instances.pop(other)[0].close()  # a test suite's many files would keep many instances
            entry = _instances[key] = [duckdb.connect(":memory:", config=config), 0]
        entry[1] += 1
    instance = entry[0]
    try:
        conn = instance.cursor()
        try:
            # Attached under a fixed name: a file called crm.duckdb would otherwise make the catalog `crm`
            # and every `crm.deals` ambiguous.
            conn.execute(f"ATTACH '{str(path).replace(chr(39), chr(39) * 2)}' AS {_ATTACHED_AS}")
            conn.execute(f"USE {_ATTACHED_AS}")
            yield conn
        finally:
            # Closing the connection rolls back what it left open and drops its temporary tables;
            # detaching then checkpoints and closes the file, before the caller releases the lock.
            conn.close()
            with instance.cursor() as detach:
                detach.execute(f"DETACH DATABASE IF EXISTS {_ATTACHED_AS}")
    finally:
        with _instances_lock:
            entry[1] -= 1


def database_problem(exc: BaseException, path: Path, memory_limit: str) -> CrmRoiError | None:
    """A DuckDB or file-system failure in the product's words: which file or setting, what it means, what to
    do. None for anything else (a bug, or an error that already names its input), which is raised as it is.
    A failed run rolls its transaction back, so every message can say the data are as they were."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    lower = text.lower()
    filename = getattr(exc, "filename", None) if isinstance(exc, OSError) else None
    if filename and not path.is_relative_to(filename):
        path = Path(filename)  # a report or Parquet copy beside the database, say, not the database itself
    if "memory must have a number" in lower or ("memory" in lower and "limit" in lower and "parse" in lower):
        return SettingsError(
            f"CRM_ROI_DUCKDB_MEMORY_LIMIT={memory_limit!r} is not a memory size ({text}). Fix: write a number "
            "and a unit, e.g. 1GB or 512MB."
        )
    # "failed to offload" is DuckDB's out-of-memory error when the spill to disk itself failed: a full disk.
    if any(p in lower for p in ("no space left", "disk is full", "not enough space", "failed to offload")):
        return CrmRoiError(
            f"{path}: the disk is full ({text}); DuckDB also spills to the .tmp folder beside the database. "
            "Nothing of this run was written. Fix: free space on that disk, or point "
            "CRM_ROI_DUCKDB_PATH at a disk with room, and rerun."
        )
    if isinstance(exc, duckdb.OutOfMemoryException):
        return CrmRoiError(
            f"{path}: DuckDB ran out of memory within CRM_ROI_DUCKDB_MEMORY_LIMIT={memory_limit} ({text}). Nothing "
            f"of this run was written. Fix: raise CRM_ROI_DUCKDB_MEMORY_LIMIT, or give {path}.tmp (where DuckDB "
            "spills) more free disk."
        )
    if "not a valid duckdb database" in lower or "corrupt" in lower or "checksum" in lower:
        return CrmRoiError(
            f"{path}: the database file is damaged or not a DuckDB file ({text}). Fix: restore it from a backup, "
            "or move it aside (with any .wal beside it) and rerun to rebuild it from the sources; the reports and "
            "Parquet copies are rebuilt with it."
        )
    if "permission denied" in lower or "read-only" in lower or "read only" in lower or isinstance(
            exc, (PermissionError, duckdb.PermissionException)):
        return CrmRoiError(
            f"{path}: cannot write it or its folder ({text}). Fix: give the user running the pipeline write "
            "access to both, or point CRM_ROI_DUCKDB_PATH at a writable place."
        )
    if isinstance(exc, (NotADirectoryError, FileExistsError)):
        return CrmRoiError(
            f"{path}: the database's folder cannot be created ({text}); a file stands where a folder should. "
            "Fix: point CRM_ROI_DUCKDB_PATH at a path inside a folder."
        )
    return None


GROWTH_WORTH_COMPACTING = 4 * 1024 * 1024  # below this, copying the file back costs more than it returns


def shrink_back(path: Path, size_before: int) -> None:
    """After a failed run: when the file grew, copy its (rolled-back, unchanged) contents into a new file and
    rename that over it. DuckDB writes a large uncommitted insert straight into the file and never truncates
    the file when the transaction rolls back, so without this a run that failed on a full disk would leave
    the file filling the disk and the next run would fail too. Best effort: if the copy itself fails (the
    disk is still full), the file stays as it is, intact, and its free blocks are reused by the next run."""
    try:
        grown = path.stat().st_size - size_before
    except OSError:
        return
    if grown <= max(GROWTH_WORTH_COMPACTING, size_before // 10):
        return
    partial = path.with_name(f".{path.name}.compact")
    try:
        partial.unlink(missing_ok=True)
        with duckdb.connect() as conn:
            conn.execute(f"ATTACH '{str(path).replace(chr(39), chr(39) * 2)}' AS src (READ_ONLY)")
            conn.execute(f"ATTACH '{str(partial).replace(chr(39), chr(39) * 2)}' AS dst")
            conn.execute("COPY FROM DATABASE src TO dst")
        if partial.stat().st_size < path.stat().st_size:
            with open(partial, "rb") as written:
                os.fsync(written.fileno())
            os.replace(partial, path)
    except (duckdb.Error, OSError):
        pass  # the original file is untouched; see the docstring
    finally:
        partial.unlink(missing_ok=True)


def beside_database(database: Path, kind: str) -> Path:
    """`<db dir>/<db file stem>_<kind>/`: a folder that belongs to one database file."""
    return database.parent / f"{database.stem}_{kind}"


class Warehouse(DuckDBResource):
    """The DuckDB file everything is staged and published in.

    DuckDB lets one process write a file, or several read it, never both; every connection therefore takes
    a file lock beside the database first, so runs of the CLI, the UI and the schedule queue instead of
    failing on DuckDB's own lock. Connections are kept short.
    """

    lock_timeout_seconds: float = Field(default=3600, description="How long to wait for another run's connection.")
    memory_limit: str = Field(
        default="1GB",
        description="DuckDB's memory limit (CRM_ROI_DUCKDB_MEMORY_LIMIT); past it, DuckDB spills to disk beside the file.",
    )

    @property
    def path(self) -> Path:
        return resolve_path(self.database)

    @property
    def published_path(self) -> Path:
        """The folder of the Parquet copies of the published tables, named after the database
        (`<db dir>/<db file stem>_published/`), so two databases in one folder never share one."""
        return beside_database(self.path, "published")

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        path = self.path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise database_problem(exc, path, self.memory_limit) or exc from None
        lock = FileLock(str(path) + ".lock")
        try:
            lock.acquire(timeout=self.lock_timeout_seconds)
        except Timeout:
            raise CrmRoiError(
                f"{path}: another run held the database for more than {self.lock_timeout_seconds:.0f}s; try again later."
            ) from None
        except OSError as exc:  # the lock file beside the database cannot be created: a read-only folder
            raise database_problem(exc, path, self.memory_limit) or exc from None
        try:
            config = {
                "custom_user_agent": "crm_roi_pipeline",
                "memory_limit": self.memory_limit,
                "temp_directory": str(path) + ".tmp",
                **self.connection_config,
            }
            size_before = path.stat().st_size if path.exists() else 0
            try:
                try:
                    with _attached(config, path) as conn:
                        conn.execute("SET TimeZone = 'UTC'")
                        conn.execute(read_sql("staging/sql/macros.sql"))
                        conn.execute(read_sql("staging/sql/schema.sql"))
                        yield conn
                except (duckdb.IOException, duckdb.PermissionException, duckdb.OutOfMemoryException,
                        duckdb.ParserException, duckdb.InvalidInputException, OSError) as exc:
                    problem = database_problem(exc, path, self.memory_limit)
                    if problem is None:
                        raise
                    raise problem from None
            except BaseException:
                # Still under the lock, with the file detached: give back what the failed run grew it by.
                shrink_back(path, size_before)
                raise
        finally:
            lock.release()


class PipelineSettings(ConfigurableResource):
    """Which sources feed `crm.*` and where the CSV exports are (CONTRACT.md, settings)."""

    source: str = Field(default="csv", description="CRM_ROI_SOURCE: csv, salesforce, hubspot or a comma list.")
    csv_dir: str = Field(default="data/sample", description="CRM_ROI_CSV_DIR: folder of CSV exports.")

    @property
    def sources(self) -> tuple[str, ...]:
        return parse_sources(self.source)

    @property
    def csv_path(self) -> Path:
        return resolve_path(self.csv_dir)


class AssumptionsFile(ConfigurableResource):
    """The business assumptions YAML (CRM_ROI_ASSUMPTIONS), validated whenever it is read."""

    path: str = Field(default="data/roi_assumptions.yaml", description="CRM_ROI_ASSUMPTIONS")

    def load(self) -> Assumptions:
        return load_assumptions(self.path)


def env_or_default(name: str, default: str):
    """`EnvVar(name)` when the variable is set, else the contract's default (EnvVar alone has no default)."""
    from dagster import EnvVar

    return EnvVar(name) if os.environ.get(name) else default


class Reports(ConfigurableResource):
    """The folder for the HTML report and its charts: CRM_ROI_REPORTS_DIR when set, else beside the database
    it describes, `<db dir>/<db file stem>_reports/` (CONTRACT.md), so two databases never share a report."""

    dir: str | None = Field(default=None, description="CRM_ROI_REPORTS_DIR; unset: beside the database")
    database: str = Field(
        default=DEFAULTS["CRM_ROI_DUCKDB_PATH"],
        description="CRM_ROI_DUCKDB_PATH: the database the reports describe (names the default folder)",
    )

    @property
    def path(self) -> Path:
        if self.dir:
            return resolve_path(self.dir)
        return beside_database(resolve_path(self.database), "reports")


def bound_resources() -> dict:
    """The Definitions' resources, bound to the environment as it is now (the settings of CONTRACT.md): each
    set variable through EnvVar, each unset one as the contract's default; each API source's resource reads
    its own variables (`from_env`). The nightly schedule binds them again when it plans, as a run would."""
    from dagster import EnvVar

    def env(name: str):
        return env_or_default(name, DEFAULTS[name])

    return {
        "warehouse": Warehouse(database=env("CRM_ROI_DUCKDB_PATH"), memory_limit=env("CRM_ROI_DUCKDB_MEMORY_LIMIT")),
        "settings": PipelineSettings(source=env("CRM_ROI_SOURCE"), csv_dir=env("CRM_ROI_CSV_DIR")),
        "assumptions": AssumptionsFile(path=env("CRM_ROI_ASSUMPTIONS")),
        # Unset, CRM_ROI_REPORTS_DIR means "beside the database": <db dir>/<db file stem>_reports/.
        "reports": Reports(
            dir=EnvVar("CRM_ROI_REPORTS_DIR") if os.environ.get("CRM_ROI_REPORTS_DIR") else None,
            database=env("CRM_ROI_DUCKDB_PATH"),
        ),
        **{name: resource.from_env() for name, resource in API_SOURCES.items()},
    }


def initialized(resources: dict) -> dict:
    """The resources with their EnvVars resolved, as a run would see them: for work outside a run (planning
    which months to stage, remembering what a run published)."""
    return {name: resource.process_config_and_initialize() for name, resource in resources.items()}
