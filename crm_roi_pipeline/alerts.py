"""Alerts on failed runs: the message (pure functions of a run's events), its Slack-compatible payload, and
its delivery to CRM_ROI_ALERT_WEBHOOK (docs/alerts.md).

The Dagster side, the `Alerts` resource and the run-failure sensor, is in `alerting.py`; `crm-roi run` sends
the same alert for its own runs. Nothing here imports the CLI: `cli.py` builds on `failure_messages` below.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import unquote, urlsplit

WEBHOOK_VARIABLE = "CRM_ROI_ALERT_WEBHOOK"
UI_URL_VARIABLE = "CRM_ROI_UI_URL"
# `crm-roi run` tags its runs so (crm_roi_pipeline/cli.py) and alerts their failures itself; the sensor
# leaves such runs alone, so that a run is alerted once even when a daemon watches the same instance.
LAUNCHED_BY_TAG, LAUNCHED_BY_CLI = "crm_roi/launched_by", "crm-roi run"

# A chat message, not a log: the first few failures, each on one line, and the link to the rest.
MAX_ITEMS = 5
ITEM_CHARS = 400
TEXT_CHARS = 3000  # Slack truncates past 4,000 characters; a header, five items and a link fit well under this
REDACTED = "[redacted]"  # plain text: Slack would read "***" as bold markup
# Values shorter than this are not scrubbed: a "1" or "true" in some *_TOKEN variable would otherwise blank
# every digit of the message. No real password, token or URL is this short.
MIN_SECRET_CHARS = 4
# Variables whose value is a secret however it is spelt elsewhere (the webhook URL holds its own key).
SECRET_VARIABLES = (WEBHOOK_VARIABLE, "DAGSTER_PG_URL")
# A second net for secrets of other tools in the same environment (a CI token, a database password).
_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|API_?KEY|PRIVATE_KEY", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*):[^/\s@]*@")
_QUERY_SECRET = re.compile(r"\b(access_token|token|password|secret|sig|signature|api_key|key)=[^&\s]+", re.IGNORECASE)

log = logging.getLogger(__name__)


# --- the message --------------------------------------------------------------------------------------------

def failure_messages(events: Iterable) -> list[str]:
    """The user's error message of each failed step of a run (its `DagsterEvent`s), prefixed with the asset. A
    blocking check that failed with ERROR severity is told by its own result: the check, the rows, what it
    does, the fix. What `crm-roi run` prints and what an alert says, from the same events."""
    events = list(events)
    messages, told = [], False
    failed_checks = [
        event.event_specific_data for event in events
        if event.event_type_value == "ASSET_CHECK_EVALUATION" and not event.event_specific_data.passed
        and event.event_specific_data.severity.value == "ERROR"
    ]
    for event in events:
        if not event.is_step_failure:
            continue
        data = event.step_failure_data
        if data.error is not None and data.error.cls_name == "DagsterAssetCheckFailedError" and failed_checks:
            # Every failed ERROR check once, however many check steps failed (one per table).
            messages += [] if told else [
                f"{check.asset_key.to_user_string()} {check.check_name} (ERROR check; metrics and ROI are not "
                f"published from this data): {check.description}"
                for check in failed_checks
            ]
            told = True
            continue
        if data.user_failure_data is not None and data.user_failure_data.description:
            text = data.user_failure_data.description
        else:
            error = data.error
            while error.cause is not None:  # the user's exception, not Dagster's wrapper
                error = error.cause
            text = error.message.strip()
        messages.append(f"{event.step_key.replace('__', '/')}: {text}")
    return messages


def run_failure_reason(events: Iterable) -> str | None:
    """The first line of the run's own failure (a run that failed before any step: a resource that could not
    start, a run worker that died), for when no step tells why."""
    for event in events:
        if event.event_type_value == "PIPELINE_FAILURE":  # DagsterEventType.RUN_FAILURE
            error = getattr(event.event_specific_data, "error", None)
            return first_line(error.message if error is not None else event.message or "")
    return None


def first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def run_link(ui_url: str | None, run_id: str) -> str | None:
    """`<CRM_ROI_UI_URL>/runs/<run id>`: the run's page in the Dagster UI."""
    return f"{ui_url.rstrip('/')}/runs/{run_id}" if ui_url else None


def run_title(job_name: str, tags: Mapping[str, str]) -> str:
    """What ran, in a few words: the job (for a selection of assets, which runs as a hidden job such as
    `__ASSET_JOB`, "selected assets"), its months and who launched it."""
    parts = ["selected assets" if job_name.startswith("__") else job_name]
    first = tags.get("dagster/asset_partition_range_start") or tags.get("dagster/partition")
    last = tags.get("dagster/asset_partition_range_end") or first
    if first:
        parts.append(f"month {first[:7]}" if first == last else f"months {first[:7]} … {last[:7]}")
    if tags.get(LAUNCHED_BY_TAG):
        parts.append(f"launched by {tags[LAUNCHED_BY_TAG]}")
    return ", ".join(parts)


def slack_escape(text: str) -> str:
    """Slack reads &, < and > as markup (links, mentions); a message quoting `<NA>` must escape them."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def alert_text(
    run_id: str, job_name: str, tags: Mapping[str, str], messages: Sequence[str], ui_url: str | None,
    secrets: Iterable[str] = (),
) -> str:
    """The alert: a header naming the run, the first line of each failure, and the run's id and link. Every
    part is scrubbed of `secrets` before it is cut short, so no prefix of a secret survives a cut."""
    secrets = tuple(secrets)

    def clean(text: str, limit: int) -> str:
        return slack_escape(cap(first_line(scrub(text, secrets)), limit))

    items = [f"• {clean(message, ITEM_CHARS)}" for message in messages[:MAX_ITEMS]]
    if len(messages) > MAX_ITEMS:
        items.append(f"… and {len(messages) - MAX_ITEMS} more failures, in the run's logs")
    link = run_link(ui_url, run_id)
    footer = f"Run {run_id}" + (f": {clean(link, 500)}" if link else "")
    header = f"crm_roi_pipeline: a run failed ({clean(run_title(job_name, tags), 300)})"
    return cap("\n".join([header, *items, footer]), TEXT_CHARS)


def run_messages(events: Iterable) -> list[str]:
    """What failed, from a run's events: each step's message, else the run's own failure, else a pointer."""
    events = list(events)
    return failure_messages(events) or [run_failure_reason(events) or "the run failed; see the Dagster run logs"]


def payload(text: str) -> dict:
    """Slack's incoming-webhook body (also what Mattermost, Rocket.Chat and Discord's /slack endpoint read)."""
    return {"text": text}


# --- secrets --------------------------------------------------------------------------------------------------

def secret_variables(environ: Mapping[str, str]) -> list[str]:
    """The variables whose values are secrets: the API sources' fields marked "(secret)" (their descriptions
    start with the variable's name, see sources/*/resource.py), the webhook and Dagster's storage URL, and any
    variable whose name says it holds a password, token or key."""
    from crm_roi_pipeline.sources.registry import API_SOURCES

    names = set(SECRET_VARIABLES)
    for resource in API_SOURCES.values():
        for field in resource.model_fields.values():
            if field.description and "(secret)" in field.description:
                names.add(field.description.split()[0])
    names |= {name for name in environ if _SECRET_NAME.search(name)}
    return sorted(names)


def secret_values(environ: Mapping[str, str] | None = None, extra: Iterable[str | None] = ()) -> list[str]:
    """The secret values to scrub: those of `secret_variables`, the password of any URL in the environment
    (`DAGSTER_PG_URL`'s, say, as written and decoded), and `extra` (a webhook URL given directly)."""
    environ = os.environ if environ is None else environ
    values = {environ[name] for name in secret_variables(environ) if environ.get(name)}
    values |= {value for value in extra if value}
    for value in list(environ.values()) + list(values):
        if "://" in value and "@" in value:
            try:
                password = urlsplit(value.strip()).password
            except ValueError:
                continue
            if password:
                values |= {password, unquote(password)}
    for value in list(values):
        # A webhook's path carries its key (Slack's /services/T…/B…/…): scrub it on its own too.
        if value.startswith(("http://", "https://")):
            path = urlsplit(value).path
            if len(path) >= 16:
                values.add(path)
    # Longest first: a secret that contains another is hidden whole.
    return sorted((v for v in values if len(v) >= MIN_SECRET_CHARS), key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` without any of `secrets`, the password of any URL in it, or a `token=`-like query value. A second
    line of defence: the messages are the pipeline's own, which never quote a secret on purpose."""
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    text = _URL_PASSWORD.sub(rf"\1:{REDACTED}@", text)
    return _QUERY_SECRET.sub(rf"\1={REDACTED}", text)


# --- delivery -------------------------------------------------------------------------------------------------

class RetryableAnswer(Exception):
    """The webhook answered 429 or 5xx: worth another try, after Retry-After when it says so."""

    def __init__(self, status: int, retry_after: float | None):
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: the exponential backoff instead


def deliver(
    url: str, body: dict, *, what: str, attempts: int = 4, first_wait: float = 1.0, max_wait: float = 10.0,
    timeout: float = 10.0, secrets: Iterable[str] = (), logger=None,
) -> bool:
    """POST `body` as JSON to `url`: up to `attempts` tries on a connection error, a timeout, 429 or 5xx,
    waiting `first_wait`, then twice as long each time (or the server's Retry-After), at most `max_wait`.
    True when delivered. Never raises: a failed alert must not change the outcome of the run it is about; it
    is logged as a warning (`what` names the alert) that names the setting, never the URL, which holds the
    webhook's key and is what `requests` puts in its exception messages."""
    import requests
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

    logger = logger or log
    hidden = [*secret_values(extra=[url]), *secrets]
    backoff = wait_exponential(multiplier=first_wait, max=max_wait)

    def wait(state) -> float:
        error = state.outcome.exception()
        if isinstance(error, RetryableAnswer) and error.retry_after is not None:
            return min(error.retry_after, max_wait)
        return backoff(state)

    def post():
        response = requests.post(url, json=body, timeout=timeout)
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableAnswer(response.status_code, _retry_after(response.headers.get("Retry-After")))
        return response

    retrying = Retrying(
        stop=stop_after_attempt(max(1, attempts)), wait=wait, reraise=True,
        retry=retry_if_exception_type((requests.ConnectionError, requests.Timeout, RetryableAnswer)),
    )
    try:
        response = retrying(post)
    except RetryableAnswer as error:
        problem = f"it answered HTTP {error.status} {attempts} times"
    except requests.RequestException as error:
        problem = f"{type(error).__name__} on each of {attempts} tries"
    except Exception as error:  # noqa: BLE001 - a bug in sending must not fail the run either
        problem = f"{type(error).__name__}: {first_line(scrub(str(error), hidden))}"
    else:
        if response.ok:
            return True
        answer = scrub(first_line(response.text), hidden)
        problem = f"it answered HTTP {response.status_code} {cap(answer, 200)!r} (not retried)"
    logger.warning(f"{what} was not delivered to {WEBHOOK_VARIABLE}: {problem}")
    return False
