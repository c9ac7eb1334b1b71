"""Talking to a HubSpot portal through hubspot-api-client: search windows, paging, rate limits, lookups.

The CRM search API pages through at most 10,000 results per query, so a window holding more is split in two
by time until each half fits; no record is skipped. Search is limited to a few requests per second per
token: calls are spaced client-side, and a 429 is retried after its Retry-After by urllib3's Retry, which
also retries 5xx answers with exponential backoff.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from hubspot import HubSpot
from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest, PublicFetchAssociationsBatchRequest
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
    "crm.objects.owners.read, crm.schemas.deals.read, sales-email-read (for emails)"
)


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
                raise SettingsError(
                    f"HubSpot's token lacks a scope needed to read {what} (403): give the private app the scopes "
                    f"{SCOPES}. HubSpot said: {str(body)[:300]}"
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
                     after: str | None, op_lo: str = "GTE"):
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
        return self.call(lambda: self.api.crm.objects.search_api.do_search(object_type, request), object_type)

    def search(self, object_type: str, prop: str, lo: dt.datetime, hi: dt.datetime, properties: list[str],
               op_lo: str = "GTE") -> Iterator[dict]:
        """Every record with `prop` in [lo, hi) (or (lo, hi) with op_lo GT), as {id, properties, ...}."""
        first = self._search_page(object_type, prop, lo, hi, properties, None, op_lo)
        if first.total > SEARCH_CEILING:
            if hi - lo <= dt.timedelta(milliseconds=1):
                raise CrmRoiError(
                    f"HubSpot holds {first.total:,} {object_type} with {prop} at {lo.isoformat()}: more than the "
                    f"{SEARCH_CEILING:,} one search can page through, and the window cannot be split further."
                )
            mid = lo + (hi - lo) / 2
            yield from self.search(object_type, prop, lo, mid, properties, op_lo)
            yield from self.search(object_type, prop, mid, hi, properties, "GTE")
            return
        page = first
        while True:
            for record in page.results:
                yield {"id": record.id, "properties": record.properties or {}}
            after = page.paging.next.after if page.paging and page.paging.next else None
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
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            body = BatchInputPublicFetchAssociationsBatchRequest(
                inputs=[PublicFetchAssociationsBatchRequest(id=i) for i in chunk]
            )
            result = self.call(
                lambda: self.api.crm.associations.v4.batch_api.get_page(from_type, to_type, body),
                f"{from_type} to {to_type} associations",
            )
            for item in result.results:
                out[str(item._from.id)] = [str(t.to_object_id) for t in item.to]
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
