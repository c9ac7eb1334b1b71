"""Talking to a Salesforce org through simple-salesforce: authentication, retries, paging, Bulk 2.0.

Records are written straight to CSV files on disk, page by page, so memory does not grow with the org;
the staging SQL then reads those files exactly like a Salesforce export (same field names, same mapping).
Secrets are held only in this object and in request headers; they never reach a message or a log line.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceOperationError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceRefusedRequest,
)
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from crm_roi_pipeline.errors import CrmRoiError, SettingsError

log = logging.getLogger("crm_roi.salesforce")
T = TypeVar("T")


@dataclass(frozen=True)
class Credentials:
    """One of three ways in; which one is decided by the variables that are set."""

    login_url: str
    api_version: str
    instance_url: str | None = None
    access_token: str | None = None
    consumer_key: str | None = None
    consumer_secret: str | None = None
    username: str | None = None
    password: str | None = None
    security_token: str | None = None

    @property
    def flow(self) -> str:
        if self.instance_url and self.access_token:
            return "access_token"
        if self.consumer_key and self.consumer_secret and self.username and self.password:
            return "password"
        if self.consumer_key and self.consumer_secret:
            return "client_credentials"
        return "none"

    def require(self) -> None:
        """Fail at the start of the run, naming what is missing."""
        if self.flow != "none":
            return
        given = [name for name, value in (
            ("SALESFORCE_INSTANCE_URL", self.instance_url), ("SALESFORCE_ACCESS_TOKEN", self.access_token),
            ("SALESFORCE_CONSUMER_KEY", self.consumer_key), ("SALESFORCE_CONSUMER_SECRET", self.consumer_secret),
            ("SALESFORCE_USERNAME", self.username), ("SALESFORCE_PASSWORD", self.password),
        ) if value]
        raise SettingsError(
            "CRM_ROI_SOURCE includes salesforce, but no complete set of Salesforce credentials is set"
            + (f" (set: {', '.join(given)})" if given else "")
            + ". Set SALESFORCE_INSTANCE_URL and SALESFORCE_ACCESS_TOKEN (e.g. from `sf org display`), or "
            "SALESFORCE_CONSUMER_KEY and SALESFORCE_CONSUMER_SECRET (client credentials), plus SALESFORCE_USERNAME "
            "and SALESFORCE_PASSWORD (and SALESFORCE_SECURITY_TOKEN) for the username-password flow."
        )


def _is_transient(exc: BaseException) -> bool:
    """Worth another try: the org's request limit, a server error, a timeout or a dropped connection."""
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return True
    if isinstance(exc, SalesforceRefusedRequest):
        return "REQUEST_LIMIT_EXCEEDED" in str(exc.content)
    if isinstance(exc, SalesforceGeneralError):
        return exc.status >= 500
    return False


class SalesforceClient:
    def __init__(
        self,
        credentials: Credentials,
        *,
        retries: int = 5,
        retry_wait_seconds: float = 2.0,
        bulk_poll_seconds: float = 5.0,
        page_size: int = 2000,
        bulk_page_size: int = 50_000,
    ):
        credentials.require()
        self.credentials = credentials
        self.retries = retries
        self.retry_wait_seconds = retry_wait_seconds
        self.bulk_poll_seconds = bulk_poll_seconds
        self.page_size = page_size
        self.bulk_page_size = bulk_page_size
        self.requests = 0
        self.retried: list[str] = []
        self.session = requests.Session()
        self.sf = self._connect()

    # --- authentication -----------------------------------------------------------------------

    def _token(self) -> tuple[str, str]:
        c = self.credentials
        data = {"client_id": c.consumer_key, "client_secret": c.consumer_secret}
        if c.flow == "password":
            data |= {"grant_type": "password", "username": c.username,
                     "password": (c.password or "") + (c.security_token or "")}
            names = "SALESFORCE_USERNAME, SALESFORCE_PASSWORD and SALESFORCE_SECURITY_TOKEN"
        else:
            data |= {"grant_type": "client_credentials"}
            names = "SALESFORCE_CONSUMER_KEY and SALESFORCE_CONSUMER_SECRET (and that the app allows the client credentials flow)"
        url = c.login_url.rstrip("/") + "/services/oauth2/token"
        try:
            response = self._retrying(lambda: self._post_token(url, data))
        except requests.RequestException as exc:
            raise CrmRoiError(
                f"Cannot reach Salesforce at {c.login_url} (SALESFORCE_LOGIN_URL): {type(exc).__name__}. Check the "
                "network or proxy from this machine, and the URL: https://login.salesforce.com, "
                "https://test.salesforce.com for a sandbox, or your My Domain URL."
            ) from None
        if response.status_code != 200:
            try:
                body = response.json()
                reason = f"{body.get('error')}: {body.get('error_description')}"
            except ValueError:
                reason = f"HTTP {response.status_code}"
            raise SettingsError(
                f"Salesforce refused the login at {c.login_url} ({reason}). Check {names}; for a sandbox set "
                "SALESFORCE_LOGIN_URL=https://test.salesforce.com, or your My Domain URL."
            )
        body = response.json()
        return body["instance_url"], body["access_token"]

    def _post_token(self, url: str, data: dict) -> requests.Response:
        self.requests += 1
        response = self.session.post(url, data=data, timeout=60)
        if response.status_code >= 500:
            raise SalesforceGeneralError(url, response.status_code, "token", response.text)
        return response

    def _connect(self) -> Salesforce:
        c = self.credentials
        if c.flow == "access_token":
            instance_url, token = c.instance_url, c.access_token
        else:
            instance_url, token = self._token()
        return Salesforce(instance_url=instance_url, session_id=token, version=c.api_version, session=self.session)

    def _refresh(self, exc: SalesforceExpiredSession) -> None:
        if self.credentials.flow == "access_token":
            raise SettingsError(
                "Salesforce says the session is invalid or expired (INVALID_SESSION_ID): SALESFORCE_ACCESS_TOKEN "
                "is no longer valid. Get a new one (for example `sf org display --target-org <alias>`), or use the "
                "OAuth variables so the pipeline can log in again by itself."
            ) from None
        log.warning("Salesforce session expired; logging in again")
        self.sf = self._connect()

    # --- calling, with retries ----------------------------------------------------------------

    def _retrying(self, fn: Callable[[], T]) -> T:
        def note(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            self.retried.append(type(exc).__name__ if exc else "?")
            log.warning(f"Salesforce call failed ({type(exc).__name__}); retry {state.attempt_number} of {self.retries - 1}")

        retrying = Retrying(
            retry=retry_if_exception(_is_transient),
            stop=stop_after_attempt(self.retries),
            wait=wait_exponential(multiplier=self.retry_wait_seconds, max=60 * self.retry_wait_seconds),
            before_sleep=note,
            reraise=True,
        )
        return retrying(fn)

    def call(self, fn: Callable[[Salesforce], T]) -> T:
        """`fn(sf)` with retries on transient faults and one fresh login on an expired session."""
        def attempt() -> T:
            self.requests += 1
            return fn(self.sf)

        try:
            try:
                return self._retrying(attempt)
            except SalesforceExpiredSession as exc:
                self._refresh(exc)
                return self._retrying(attempt)
        except requests.RequestException as exc:
            # Refused, DNS, TLS or timeouts that outlasted the retries: where, and what to check.
            raise CrmRoiError(
                f"Cannot reach Salesforce at {self.sf.base_url.split('/services/')[0]} (the instance the login at "
                f"SALESFORCE_LOGIN_URL returned) after {self.retries} attempts: {type(exc).__name__}. Check the "
                "network or proxy from this machine; rerun once it answers (staged data is unchanged)."
            ) from None

    @property
    def api_usage(self) -> str | None:
        usage = self.sf.api_usage.get("api-usage") if self.sf.api_usage else None
        return f"{usage.used:,} of {usage.total:,} API requests used in the last 24 h" if usage else None

    # --- metadata -----------------------------------------------------------------------------

    def describe_fields(self, sobject: str) -> dict[str, dict]:
        """Field name -> description; an object the org lacks (or hides from this user) gives {}."""
        try:
            result = self.call(lambda sf: getattr(sf, sobject).describe())
        except SalesforceError as exc:
            if getattr(exc, "status", None) == 404:
                return {}
            raise
        return {f["name"]: f for f in result["fields"]}

    def count(self, soql_where: str, sobject: str, include_deleted: bool = False) -> int:
        soql = f"SELECT COUNT() FROM {sobject}" + (f" WHERE {soql_where}" if soql_where else "")
        return self.call(lambda sf: sf.query(soql, include_deleted=include_deleted))["totalSize"]

    # --- records to CSV -----------------------------------------------------------------------

    def rest_to_csv(self, soql: str, fields: list[str], path: Path, include_deleted: bool = False) -> int:
        """REST query (queryAll when `include_deleted`), every nextRecordsUrl page appended to one CSV file."""
        rows = 0
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(fields)
            page = self.call(lambda sf: sf.query(soql, include_deleted=include_deleted))
            while True:
                for record in page["records"]:
                    writer.writerow([_csv_value(_path_value(record, f)) for f in fields])
                    rows += 1
                if page.get("done", True) or not page.get("nextRecordsUrl"):
                    break
                next_url = page["nextRecordsUrl"]
                page = self.call(lambda sf: sf.query_more(next_url, identifier_is_url=True, include_deleted=include_deleted))
        return rows

    def bulk_to_csv(self, sobject: str, soql: str, folder: Path, include_deleted: bool = False) -> tuple[int, list[Path]]:
        """A Bulk API 2.0 query job, its result pages (Sforce-Locator) streamed into CSV files in `folder`."""
        def bulk(sf: Salesforce):
            # Looked up on each call: the handler keeps the session id it was made with, and a re-login
            # replaces `sf`.
            return getattr(sf.bulk2, sobject)._client

        job = self.call(lambda sf: bulk(sf).create_job("queryAll" if include_deleted else "query", soql))
        job_id = job["id"]
        try:
            self.call(lambda sf: bulk(sf).wait_for_job(job_id, True, self.bulk_poll_seconds))
        except (SalesforceError, SalesforceOperationError) as exc:
            state = "unknown"
            try:
                info = self.call(lambda sf: bulk(sf).get_job(job_id, True))
                state = f"{info.get('state')}: {info.get('errorMessage') or 'no message'}"
            except (SalesforceError, SalesforceOperationError):
                pass
            raise CrmRoiError(f"Salesforce Bulk API 2.0 query job {job_id} on {sobject} did not complete ({state}).") from exc
        files, rows, locator = [], 0, ""
        folder.mkdir(parents=True, exist_ok=True)
        while True:
            page = self.call(lambda sf: bulk(sf).download_job_data(str(folder), job_id, locator, self.bulk_page_size))
            files.append(Path(page["file"]))
            rows += page["number_of_records"]
            locator = page["locator"]
            if not locator:
                break
        return rows, files


def _path_value(record: dict, field: str) -> Any:
    """`Account.Name` from the nested JSON of a REST record."""
    value: Any = record
    for part in field.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def soql_datetime(moment: dt.datetime | dt.date) -> str:
    """A SOQL datetime literal, from our own dates only (never from user text)."""
    if not isinstance(moment, dt.datetime):
        moment = dt.datetime.combine(moment, dt.time())
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def soql_date(day: dt.date) -> str:
    return day.strftime("%Y-%m-%d")


def check_identifier(name: str) -> str:
    """Field and object names come from describe() or settings: only API-name characters pass."""
    parts = name.split(".")
    if not all(p and (p[0].isalpha()) and all(ch.isalnum() or ch == "_" for ch in p) for p in parts):
        raise SettingsError(f"{name!r} is not a Salesforce API field name (letters, digits and _ only).")
    return name

