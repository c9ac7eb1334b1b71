"""The tests' Dagster instances: what `DagsterInstance.ephemeral()` makes, with a faster event log, handed from
one test to the next wiped.

Kept out of conftest.py, which `pytest -n` also imports in the process that only hands out the tests: Dagster
takes a second and a half to import there, before a worker starts.
"""

from __future__ import annotations

import contextlib

from dagster import DagsterInstance
from dagster._core.instance.types import InstanceType
from dagster._core.launcher.sync_in_memory_run_launcher import SyncInMemoryRunLauncher
from dagster._core.run_coordinator import DefaultRunCoordinator
from dagster._core.storage.event_log import InMemoryEventLogStorage
from dagster._core.storage.noop_compute_log_manager import NoOpComputeLogManager
from dagster._core.storage.root import TemporaryLocalArtifactStorage
from dagster._core.storage.runs import InMemoryRunStorage


class _OneConnectionEventLog(InMemoryEventLogStorage):
    """The event log of `DagsterInstance.ephemeral()` without two costs of its own: it opens a new SQLite
    connection (and sets two PRAGMAs) for every statement, and asks SQLite for a table's columns for every
    event it stores, though its tables never change. A run over every month stores some 150 events per asset
    (one per month); this saves a seventh of the fast tier's time. What is stored, and how it is read back, is
    Dagster's own code."""

    def __init__(self):
        super().__init__()
        self._tables: dict[str, bool] = {}
        self._asset_key_columns: dict[str, bool] = {}

    @contextlib.contextmanager
    def _connect(self):
        with self._db_lock, self._held_conn.begin():
            yield self._held_conn

    def has_table(self, table_name: str) -> bool:
        if table_name not in self._tables:
            self._tables[table_name] = super().has_table(table_name)
        return self._tables[table_name]

    def _has_asset_key_col_on_connection(self, conn, column_name: str) -> bool:
        if column_name not in self._asset_key_columns:
            self._asset_key_columns[column_name] = super()._has_asset_key_col_on_connection(conn, column_name)
        return self._asset_key_columns[column_name]


def ephemeral_instance() -> DagsterInstance:
    """What `DagsterInstance.ephemeral()` makes (dagster/_core/instance/factory.py), with the event log above."""
    return DagsterInstance(
        instance_type=InstanceType.EPHEMERAL,
        local_artifact_storage=TemporaryLocalArtifactStorage(),
        run_storage=InMemoryRunStorage(),
        event_storage=_OneConnectionEventLog(),
        compute_log_manager=NoOpComputeLogManager(),
        run_coordinator=DefaultRunCoordinator(),
        run_launcher=SyncInMemoryRunLauncher(),
    )


# Making an instance costs ~60 ms (Dagster stamps its storages' schemas with alembic), wiping one ~5 ms.
_WIPED: list[DagsterInstance] = []


def take_instance() -> DagsterInstance:
    """An instance a finished test gave back, wiped, or a new one."""
    return _WIPED.pop() if _WIPED else ephemeral_instance()


def give_back(instance: DagsterInstance) -> None:
    """Wipe the instance (every run and event goes) for the next test to take."""
    instance.wipe()
    _WIPED.append(instance)
