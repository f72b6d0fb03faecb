"""Operations: the failure alert reaches a webhook; the GA4 sensor fires once per new day."""

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg

from orchestration.defs.pipeline.schedules import (
    default_status,
    new_ga4_export_day,
    nightly_schedule,
)
from orchestration.settings import load_settings

from .conftest import DEMO_AS_OF, SEEDS, run_cdp


def test_failed_run_posts_an_alert_to_the_webhook(tmp_path):
    received = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = run_cdp(
            tmp_path / "data",
            CDP_AS_OF=DEMO_AS_OF,
            CDP_SHEETS_URI=str(tmp_path / "missing"),
            CDP_ALERT_WEBHOOK_URL=f"http://127.0.0.1:{server.server_address[1]}/",
        )
    finally:
        server.shutdown()
    assert result.returncode == 1
    assert [a["step"] for a in received] == ["sheets_tabs"]
    assert "folder not found" in received[0]["error"] and received[0]["run_id"]


def test_sensor_requests_a_run_for_each_new_export_day(tmp_path, monkeypatch):
    export = tmp_path / "export"
    shutil.copytree(SEEDS / "ga4" / "events_20261001", export / "events_20261001")
    monkeypatch.setenv("CDP_GA4_EXPORT_URI", str(export))
    with dg.instance_for_test() as instance:
        first = new_ga4_export_day(dg.build_sensor_context(instance=instance))
        assert isinstance(first, dg.RunRequest)
        context = dg.build_sensor_context(instance=instance, cursor=first.run_key)
        assert isinstance(new_ga4_export_day(context), dg.SkipReason)
        shutil.copytree(SEEDS / "ga4" / "events_20261002", export / "events_20261002")
        again = new_ga4_export_day(dg.build_sensor_context(instance=instance, cursor=first.run_key))
        assert isinstance(again, dg.RunRequest) and again.tags["cdp/trigger"] == "events_20261002"
    assert nightly_schedule.job.name == "nightly"


def test_schedules_are_off_unless_switched_on():
    assert default_status(load_settings({})) == dg.DefaultScheduleStatus.STOPPED
    assert default_status(load_settings({"CDP_SCHEDULES": "on"})) == (
        dg.DefaultScheduleStatus.RUNNING
    )
