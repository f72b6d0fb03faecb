"""Failure alerts: always logged; also POSTed as JSON to CDP_ALERT_WEBHOOK_URL when set."""

from __future__ import annotations

import json
import logging
import urllib.request

from orchestration.settings import load_settings

log = logging.getLogger("cdp")


def send_alert(title: str, details: dict) -> None:
    log.error("%s: %s", title, json.dumps(details, default=str))
    url = load_settings().alert_webhook_url
    if not url:
        return
    body = json.dumps({"text": title, **details}, default=str).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10):
            pass
    except OSError as exc:  # an alert must never hide the failure it reports
        log.error("could not deliver the alert to CDP_ALERT_WEBHOOK_URL: %s", exc)
