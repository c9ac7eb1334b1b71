"""Talking to a HubSpot portal through hubspot-api-client: search windows, paging, rate limits, lookups.

The CRM search API pages through at most 10,000 results per query, so a window holding more is split in two
by time until each half fits; no record is skipped. Search is limited to a few requests per second per
token: calls are spaced client-side, and a 429 is retried after its Retry-After by urllib3's Retry, which
also retries 5xx answers with exponential backoff.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from hubspot import HubSpot
from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest, PublicFetchAssociationsBatchRequest
from hubspot.crm.associations.v4.configuration import Configuration as AssociationsConfiguration
from hubspot.crm.objects import BatchReadInputSimplePublicObjectId, Filter, FilterGroup, PublicObjectSearchRequest
from hubspot.crm.objects import SimplePublicObjectId
import urllib3
from urllib3.util.retry import Retry

from crm_roi_pipeline.errors import CrmRoiError, SettingsError

log = logging.getLogger("crm_roi.hubspot")
# HubSpot counts searches per token, so every client of this process with the same token shares one clock.
_LAST_SEARCH: dict[int, float] = {}
_SEARCH_LOCK = threading.Lock()
_RECENT_CALLS: dict[int, collections.deque] = {}


def _network_reason(exc: BaseException) -> str:
    """The innermost cause of a network failure in a few words (e.g. "ConnectionRefusedError: [Errno 111]
    Connection refused"), never the request's headers or URL query."""
    inner = getattr(exc, "reason", None) or exc
    while isinstance(inner, urllib3.exceptions.HTTPError) and getattr(inner, "reason", None) is not None:
        inner = inner.reason
    text = str(inner).split(": ", 1)[-1] if isinstance(inner, urllib3.exceptions.HTTPError) else str(inner)
    return f"{type(inner).__name__}: {text[:160]}"


def _counting_retry(counter: list[int], **kwargs) -> Retry:
    """urllib3's Retry, counting the retries it makes into `counter` (for the run's metadata)."""

    class CountingRetry(Retry):
        def increment(self, *args, **kw):
            counter[0] += 1
            return super().increment(*args, **kw)

    return CountingRetry(**kwargs)

SEARCH_CEILING = 10_000  # results one search query can page through
PAGE = 200  # the search API's largest page
SCOPES = (
    "crm.objects.deals.read, crm.objects.contacts.read (contacts and engagements), crm.objects.companies.read, "
    "crm.objects.owners.read, crm.schemas.deals.read, sales-email-read (for emails), tickets (for tickets), "
    "crm.objects.feedback_submissions.read (for tickets' CSAT; optional)"
)
FEEDBACK_SCOPE = "crm.objects.feedback_submissions.read"


class MissingScopeError(SettingsError):
    """A 403: the token lacks a scope. A subclass, so that a caller to whom the data is optional (CSAT) can go on
    without it, while everyone else fails as on any settings error."""

    def __init__(self, message: str, what: str, category: str | None):
        super().__init__(message)
        self.what = what
        self.category = category  # HubSpot's error category, e.g. MISSING_SCOPES


def _error_category(body) -> str | None:
    """HubSpot's `category` of an error body (JSON text), or None when the body is not HubSpot's JSON."""
    try:
        return json.loads(body).get("category")
    except (TypeError, ValueError, AttributeError):
        return None


@dataclass(frozen=True)
class HubSpotCredentials:
    access_token: str | None
    base_url: str

    def require(self) -> None:
        if not self.access_token:
            raise SettingsError(
                "CRM_ROI_SOURCE includes hubspot, but HUBSPOT_ACCESS_TOKEN is not set: create a private app in "
                f"HubSpot (Settings > Integrations > Private apps) with the scopes {SCOPES}, and set its token."
            )


def epoch_ms(moment: dt.datetime | dt.date) -> str:
    if not isinstance(moment, dt.datetime):
        moment = dt.datetime.combine(moment, dt.time())
    return str(int(moment.replace(tzinfo=dt.timezone.utc).timestamp() * 1000))


class HubSpotClient:
    def __init__(self, credentials: HubSpotCredentials, *, search_rps: float | None = 4.0, retries: int = 5,
                 backoff_seconds: float = 1.0, burst_per_10s: int | None = 100):
        credentials.require()
        self.retry_count = [0]
        retry = _counting_retry(
            self.retry_count,
            total=retries,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=None,  # search is a POST and only reads
            backoff_factor=backoff_seconds,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        self.api = HubSpot(access_token=credentials.access_token, host=credentials.base_url.rstrip("/"), retry=retry)
        self.base_url = credentials.base_url
        # A hair over 1/rps: the portal's window and ours do not start at the same instant.
        self.min_interval = 1.0 / search_rps + 0.01 if search_rps else 0.0
        self._token_key = hash((credentials.base_url, credentials.access_token))
        self.requests = 0
        self.searches = 0
        self.burst = burst_per_10s

    # --- errors -------------------------------------------------------------------------------

    def _respect_burst(self) -> None:
        """At most `burst_per_10s` calls in any ten seconds (HubSpot's per-app burst limit), per token."""
        if not self.burst:
            return
        with _SEARCH_LOCK:
            recent = _RECENT_CALLS.setdefault(self._token_key, collections.deque())
            now = time.monotonic()
            while recent and now - recent[0] >= 10:
                recent.popleft()
            if len(recent) >= self.burst:
                time.sleep(10 - (now - recent[0]))
                recent.popleft()
            recent.append(time.monotonic())

    def call(self, fn, what: str):
        self.requests += 1
        self._respect_burst()
        try:
            return fn()
        except Exception as exc:  # the generated clients raise one ApiException class per API package
            status = getattr(exc, "status", None)
            if status == 401:
                raise SettingsError(
                    f"HubSpot refused HUBSPOT_ACCESS_TOKEN (401) while reading {what}: the token is wrong, revoked or "
                    "expired. Copy the private app's current token."
                ) from None
            if status == 403:
                body = getattr(exc, "body", "") or ""
                raise MissingScopeError(
                    f"HubSpot's token lacks a scope needed to read {what} (403): give the private app the scopes "
                    f"{SCOPES}. HubSpot said: {str(body)[:300]}",
                    what, _error_category(body),
                ) from None
            if status is not None:
                raise CrmRoiError(f"HubSpot answered {status} while reading {what}: {str(getattr(exc, 'body', ''))[:300]}") from None
            if isinstance(exc, (urllib3.exceptions.HTTPError, OSError)):
                # Connection refused, DNS, TLS or a timeout, after urllib3's retries: say where and what to check.
                raise CrmRoiError(
                    f"Cannot reach HubSpot at {self.base_url} (HUBSPOT_BASE_URL) while reading {what}: "
                    f"{_network_reason(exc)}. Check the network or proxy from this machine, and that HUBSPOT_BASE_URL "
                    "is https://api.hubapi.com (the default) unless you mean another host."
                ) from None
            raise

    def _space_search(self) -> None:
        with _SEARCH_LOCK:
            wait = _LAST_SEARCH.get(self._token_key, 0.0) + self.min_interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            _LAST_SEARCH[self._token_key] = time.monotonic()

    # --- search -------------------------------------------------------------------------------

    def _search_page(self, object_type: str, prop: str, lo: dt.datetime, hi: dt.datetime, properties: list[str],
                     after: str | None, op_lo: str = "GTE") -> dict:
        """One page of a search as HubSpot's JSON: {total, results: [{id, properties, ...}], paging?}."""
        request = PublicObjectSearchRequest(
            filter_groups=[FilterGroup(filters=[
                Filter(property_name=prop, operator=op_lo, value=epoch_ms(lo)),
                Filter(property_name=prop, operator="LT", value=epoch_ms(hi)),
            ])],
            sorts=[prop],
            properties=properties,
            limit=PAGE,
            after=after,
        )
        self._space_search()
        self.searches += 1
        # The page is read as JSON rather than into the client's models: building a model per record, with its
        # createdAt/updatedAt parsed by dateutil, cost ~0.6 ms a record (six seconds per 10,000) for values only
        # `id` and `properties` of are used. Errors are still raised by the client, before the body is read.
        response = self.call(
            lambda: self.api.crm.objects.search_api.do_search(object_type, request, _preload_content=False),
            object_type,
        )
        try:
            return json.loads(response.data)
        finally:
            response.release_conn()

    def search(self, object_type: str, prop: str, lo: dt.datetime, hi: dt.datetime, properties: list[str],
               op_lo: str = "GTE") -> Iterator[dict]:
        """Every record with `prop` in [lo, hi) (or (lo, hi) with op_lo GT), as {id, properties, ...}."""
        first = self._search_page(object_type, prop, lo, hi, properties, None, op_lo)
        total = int(first.get("total") or 0)
        if total > SEARCH_CEILING:
            if hi - lo <= dt.timedelta(milliseconds=1):
                raise CrmRoiError(
                    f"HubSpot holds {total:,} {object_type} with {prop} at {lo.isoformat()}: more than the "
                    f"{SEARCH_CEILING:,} one search can page through, and the window cannot be split further."
                )
            mid = lo + (hi - lo) / 2
            yield from self.search(object_type, prop, lo, mid, properties, op_lo)
            yield from self.search(object_type, prop, mid, hi, properties, "GTE")
            return
        page = first
        while True:
            for record in page.get("results") or ():
                yield {"id": str(record["id"]), "properties": record.get("properties") or {}}
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return
            page = self._search_page(object_type, prop, lo, hi, properties, after, op_lo)

    def archived(self, object_type: str) -> Iterator[dict]:
        """Archived records, with when they were archived (the list API is the only one that shows them)."""
        after = None
        while True:
            page = self.call(
                lambda: self.api.crm.objects.basic_api.get_page(object_type, limit=100, after=after, archived=True),
                f"archived {object_type}",
            )
            for record in page.results:
                yield {"id": record.id, "archived_at": record.archived_at}
            after = page.paging.next.after if page.paging and page.paging.next else None
            if not after:
                return

    # --- lookups ------------------------------------------------------------------------------

    def associations(self, from_type: str, to_type: str, ids: list[str]) -> dict[str, list[str]]:
        """id -> associated ids of `to_type`, 1,000 ids per request."""
        out: dict[str, list[str]] = {}
        # One configuration for all inputs: without it each input model copies the default configuration, which
        # cost ~0.35 ms an id (a third of a second per 1,000).
        config = AssociationsConfiguration.get_default_copy()
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            body = BatchInputPublicFetchAssociationsBatchRequest(
                inputs=[PublicFetchAssociationsBatchRequest(id=i, local_vars_configuration=config) for i in chunk],
                local_vars_configuration=config,
            )
            # Read as JSON, as search pages are: a 207 answer carries one error model per id without associations,
            # which the client would build (and HubSpot's `from` is no name a model can hold).
            response = self.call(
                lambda: self.api.crm.associations.v4.batch_api.get_page(from_type, to_type, body,
                                                                       _preload_content=False),
                f"{from_type} to {to_type} associations",
            )
            try:
                result = json.loads(response.data)
            finally:
                response.release_conn()
            for item in result.get("results") or ():
                out[str(item["from"]["id"])] = [str(t["toObjectId"]) for t in item.get("to") or ()]
        return out

    def names(self, object_type: str, ids: list[str], prop: str = "name") -> dict[str, str]:
        out: dict[str, str] = {}
        for start in range(0, len(ids), 100):
            body = BatchReadInputSimplePublicObjectId(
                inputs=[SimplePublicObjectId(id=i) for i in ids[start : start + 100]], properties=[prop]
            )
            result = self.call(lambda: self.api.crm.objects.batch_api.read(object_type, body), f"{object_type} names")
            for record in result.results:
                if record.properties.get(prop):
                    out[str(record.id)] = record.properties[prop]
        return out

    def deal_stages(self) -> dict[str, tuple[str, str]]:
        """Stage id -> (label, won | lost | open), from each stage's metadata rather than its name."""
        result = self.call(lambda: self.api.crm.pipelines.pipelines_api.get_all("deals"), "deal pipelines")
        stages = {}
        for pipeline in result.results:
            for stage in pipeline.stages:
                meta = stage.metadata or {}
                closed = str(meta.get("isClosed", "false")).lower() == "true"
                probability = float(meta.get("probability") or 0)
                state = ("won" if probability >= 1 else "lost") if closed else "open"
                stages[stage.id] = (stage.label, state)
        return stages

    def ticket_stages(self) -> dict[str, tuple[str, str]]:
        """Ticket stage id -> (label, open | closed), from each stage's metadata `ticketState` (OPEN / CLOSED), so
        that custom pipelines' closed stages count whatever they are called."""
        result = self.call(lambda: self.api.crm.pipelines.pipelines_api.get_all("tickets"), "ticket pipelines")
        stages = {}
        for pipeline in result.results:
            for stage in pipeline.stages:
                meta = stage.metadata or {}
                state = str(meta.get("ticketState") or "").upper()
                if not state and "isClosed" in meta:  # older portals' stages carry isClosed instead
                    state = "CLOSED" if str(meta["isClosed"]).lower() == "true" else "OPEN"
                stages[stage.id] = (stage.label, "closed" if state == "CLOSED" else "open")
        return stages

    def probe(self, object_type: str) -> None:
        """One record of the list API: raises MissingScopeError when the token may not read the type."""
        self.call(lambda: self.api.crm.objects.basic_api.get_page(object_type, limit=1), object_type)

    def read(self, object_type: str, ids: list[str], properties: list[str]) -> dict[str, dict]:
        """id -> properties of each record (batch read, 100 ids per request); ids HubSpot no longer has are left
        out (its 207 answer lists them as errors)."""
        out: dict[str, dict] = {}
        for start in range(0, len(ids), 100):
            body = BatchReadInputSimplePublicObjectId(
                inputs=[SimplePublicObjectId(id=i) for i in ids[start : start + 100]], properties=properties
            )
            result = self.call(lambda: self.api.crm.objects.batch_api.read(object_type, body), object_type)
            for record in result.results:
                out[str(record.id)] = record.properties or {}
        return out

    def option_labels(self, object_type: str, prop: str) -> dict[str, str]:
        result = self.call(lambda: self.api.crm.properties.core_api.get_by_name(object_type, prop), f"{object_type}.{prop}")
        return {o.value: o.label for o in (result.options or [])}

    def owner_teams(self) -> dict[str, str]:
        out, after = {}, None
        while True:
            page = self.call(lambda: self.api.crm.owners.owners_api.get_page(limit=500, after=after), "owners")
            for owner in page.results:
                teams = owner.teams or []
                primary = next((t for t in teams if getattr(t, "primary", False)), teams[0] if teams else None)
                if primary is not None:
                    out[str(owner.id)] = primary.name
            after = page.paging.next.after if page.paging and page.paging.next else None
            if not after:
                return out
