"""Alerts in Dagster: the `Alerts` resource (CRM_ROI_ALERT_WEBHOOK, CRM_ROI_UI_URL) and the run-failure
sensor that sends one for each failed run under the daemon. `crm-roi run` sends its own through
`alert_failed_cli_run`. What is sent, and how: alerts.py and docs/alerts.md."""

from __future__ import annotations

import os

from dagster import (
    ConfigurableResource,
    DagsterEventType,
    DefaultSensorStatus,
    EnvVar,
    RunFailureSensorContext,
    run_failure_sensor,
)
from pydantic import Field

from crm_roi_pipeline import alerts as message

# field -> variable, each bound through EnvVar when it is set (the UI shows the name, never the webhook's key).
ENV_VARIABLES = {"webhook_url": message.WEBHOOK_VARIABLE, "ui_url": message.UI_URL_VARIABLE}
# What the alert is built from; a run over many months logs thousands of other events.
FAILURE_EVENTS = {DagsterEventType.STEP_FAILURE, DagsterEventType.ASSET_CHECK_EVALUATION, DagsterEventType.RUN_FAILURE}


class Alerts(ConfigurableResource):
    """Where alerts on failed runs go. Without a webhook, nothing is sent."""

    webhook_url: str | None = Field(
        default=None, description="CRM_ROI_ALERT_WEBHOOK (secret): the URL that receives a JSON message per failed run")
    ui_url: str | None = Field(default=None, description="CRM_ROI_UI_URL: the Dagster UI's base URL, for the run's link")
    attempts: int = Field(default=4, description="tries per alert, on a connection error, a timeout, 429 or 5xx")
    retry_wait_seconds: float = Field(default=1.0, description="the first wait between tries; doubles each time")
    timeout_seconds: float = Field(default=5.0, description="how long one try may wait to connect, and for the answer")

    @classmethod
    def from_env(cls) -> Alerts:
        """Bound to the variables that are set, each through EnvVar; an unset one keeps its default (none)."""
        return cls(**{field: EnvVar(name) for field, name in ENV_VARIABLES.items() if os.environ.get(name)})

    def alert(self, run, events, logger=None) -> bool:
        """Send the alert for a failed `run` (a DagsterRun) from its events; True when delivered, False when it
        could not be or there is no webhook. Never raises (see alerts.deliver)."""
        if not self.webhook_url:
            return False
        what = f"the alert for run {run.run_id}"
        try:
            secrets = message.secret_values(extra=[self.webhook_url])
            text = message.alert_text(run.run_id, run.job_name, run.tags, message.run_messages(events), self.ui_url,
                                      secrets)
            return message.deliver(
                self.webhook_url, message.payload(text), what=what, attempts=self.attempts,
                first_wait=self.retry_wait_seconds, max_wait=max(10.0, self.retry_wait_seconds),
                timeout=self.timeout_seconds, secrets=secrets, logger=logger,
            )
        except Exception as error:  # noqa: BLE001 - a bug here must not fail the CLI or the sensor's tick
            (logger or message.log).warning(f"{what} was not sent: {type(error).__name__}")
            return False


def alerted_by_cli(tags) -> bool:
    return tags.get(message.LAUNCHED_BY_TAG) == message.LAUNCHED_BY_CLI


@run_failure_sensor(
    name="alert_on_run_failure",
    default_status=DefaultSensorStatus.RUNNING,
    description="Sends one short JSON message per failed run to CRM_ROI_ALERT_WEBHOOK (Slack-compatible), with "
    "a link to the run when CRM_ROI_UI_URL is set; without the webhook, nothing is sent. Runs of `crm-roi run` "
    "are alerted by the CLI itself. See docs/alerts.md.",
)
def alert_on_run_failure(context: RunFailureSensorContext, alerts: Alerts) -> None:
    # Returns None for every run, so that the sensor's cursor moves past each failed run in one tick and no run
    # is seen twice (a SkipReason would end the tick after the first).
    run = context.dagster_run
    if not alerts.webhook_url or alerted_by_cli(run.tags):
        return None
    events = [entry.dagster_event for entry in context.instance.all_logs(run.run_id, of_type=FAILURE_EVENTS)
              if entry.dagster_event is not None]
    if alerts.alert(run, events, logger=context.log):
        context.log.info(f"alert for run {run.run_id} sent to {message.WEBHOOK_VARIABLE}")
    return None


def alert_failed_cli_run(result) -> bool:
    """For `crm-roi run`: the alert on its failed run (an ExecuteInProcessResult), to the webhook of the
    environment; the sensor leaves these runs to it (they carry its `crm_roi/launched_by` tag)."""
    try:
        alerts = Alerts.from_env().process_config_and_initialize()
    except Exception as error:  # noqa: BLE001 - a bad setting here must not change the run's exit code
        message.log.warning(f"the alert for run {result.run_id} was not sent: {type(error).__name__}")
        return False
    return alerts.alert(result.dagster_run, result.all_events)
