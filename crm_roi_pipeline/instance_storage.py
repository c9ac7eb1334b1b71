"""The Dagster instance's PostgreSQL storage (deploy/postgres/dagster.yaml): dagster-postgres' own, given a plain
`postgresql://` URL that works whatever SQLAlchemy is installed, and a plain error when the database cannot be
reached.

Why a storage class and not a pinned SQLAlchemy: SQLAlchemy 2.1 reads a bare `postgresql://` URL as psycopg 3,
with which dagster-postgres' `NOTIFY run_events, :id` fails (psycopg 3 binds parameters on the server, and
NOTIFY takes none); a pin would hold every other package back and break as soon as anything upgrades
SQLAlchemy. Here a bare `postgresql://` (or `postgres://`) URL is given the driver dagster-postgres is made for,
psycopg2 (`postgresql+psycopg2://`); a URL that names its driver is used as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dagster._core.storage.config import pg_config
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

from crm_roi_pipeline.errors import CrmRoiError

# Seconds to wait for the server to answer before saying it cannot be reached.
CONNECT_TIMEOUT = 10


class InstanceDatabaseError(CrmRoiError):
    """The Dagster instance's PostgreSQL database cannot be reached (message without the password)."""


def with_psycopg2(url: str) -> str:
    """`url` with the psycopg2 driver when it names none (`postgresql://` or `postgres://`)."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in ("postgresql", "postgres"):
        return f"postgresql+psycopg2://{rest}"
    return url


def without_password(url: str) -> str:
    """`url` as it can be shown: the password, if any, replaced by ***."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        userinfo = f"{parts.username or ''}:***"
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))
    except ValueError:  # not a URL one can read: show its scheme only
        return url.partition("://")[0] + "://***"


def check_reachable(url: str) -> None:
    """Connect once; raise InstanceDatabaseError, naming the database (`url` without its password), when that
    fails."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    shown = without_password(url)
    try:
        engine = sqlalchemy.create_engine(with_psycopg2(url), poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT})
        with engine.connect():
            pass
        engine.dispose()
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as exc:
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        reason = cause[0].strip() if cause else type(exc).__name__
        password = urlsplit(url).password if "://" in url else None
        if password:
            reason = reason.replace(password, "***")
        raise InstanceDatabaseError(
            f"the Dagster instance's database {shown} (DAGSTER_PG_URL, read by $DAGSTER_HOME/dagster.yaml) cannot "
            f"be reached: {reason}. Nothing was run and nothing was written to DuckDB. Fix: start PostgreSQL, or "
            "set DAGSTER_PG_URL to a server that answers."
        ) from None


class CrmRoiPostgresStorage(DagsterPostgresStorage):
    """dagster-postgres' storage (runs, event log, schedules) with the URL made to name psycopg2 and checked
    once when the instance is made."""

    @classmethod
    def config_type(cls):
        return pg_config()

    @classmethod
    def from_config_value(  # ty: ignore[invalid-method-override]
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> CrmRoiPostgresStorage:
        if "postgres_url" in config_value and not config_value["postgres_url"]:
            raise InstanceDatabaseError(
                "DAGSTER_PG_URL is empty: the Dagster instance's database (read by $DAGSTER_HOME/dagster.yaml) needs a "
                "postgresql:// URL, such as postgresql://user:password@host:5432/dagster. Nothing was run.")
        url = pg_url_from_config(config_value)
        check_reachable(url)
        return cls(
            inst_data=inst_data,
            postgres_url=with_psycopg2(url),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )
