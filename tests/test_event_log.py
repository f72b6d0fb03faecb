"""`cdp run`'s Dagster event log: Dagster's SQLite files, written through kept connections."""

import dagster as dg

from orchestration import event_log
from orchestration.cli import _instance


@dg.asset(check_specs=[dg.AssetCheckSpec("positive", asset="numbers")])
def numbers(context: dg.AssetExecutionContext):
    context.log.info("counting")
    yield dg.MaterializeResult(metadata={"rows": 3})
    yield dg.AssetCheckResult(check_name="positive", passed=True)


def test_runs_stored_through_kept_connections_read_back_by_dagsters_own_storage(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    history = tmp_path / "dagster" / "history" / "runs"
    with _instance(tmp_path) as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, event_log.KeptConnectionSqliteEventLogStorage)
        run_ids = []
        for _ in range(event_log.KEPT_FILES + 2):  # more runs than files kept open
            result = dg.materialize([numbers], instance=instance)
            assert result.success
            run_ids.append(result.run_id)
        assert len(storage._engines) == event_log.KEPT_FILES
    # closed: the events moved from SQLite's write-ahead logs into the files themselves, which
    # is where a backup, or erasure's scan of the run history, finds them
    assert not [p for p in history.glob("*.db-wal") if p.stat().st_size]
    for run_id in run_ids:
        assert b"counting" in (history / f"{run_id}.db").read_bytes()

    # what `dagster dev` on the same folder reads, with Dagster's default storage
    ui = dg.DagsterInstance.local_temp(tempdir=str(tmp_path / "dagster"))
    assert type(ui.event_log_storage).__name__ == "SqliteEventLogStorage"
    for run_id in run_ids:
        kinds = [e.dagster_event_type for e in ui.all_logs(run_id) if e.is_dagster_event]
        assert kinds.count(dg.DagsterEventType.ASSET_MATERIALIZATION) == 1
        assert kinds.count(dg.DagsterEventType.ASSET_CHECK_EVALUATION) == 1
        assert any(e.user_message == "counting" for e in ui.all_logs(run_id))
    latest = ui.get_latest_materialization_event(dg.AssetKey("numbers"))
    assert latest.run_id == run_ids[-1]
    assert latest.asset_materialization.metadata["rows"].value == 3
    check = ui.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("numbers"), "positive"), limit=10
    )
    assert {c.run_id for c in check} == set(run_ids)
    assert all(c.status.value == "SUCCEEDED" for c in check)

    with _instance(tmp_path) as instance:
        assert dg.materialize([numbers], instance=instance).success
        instance.event_log_storage.wipe()  # the runs' files deleted, their connections closed
        assert not list(history.glob(f"{run_ids[0]}.db*"))
        assert dg.materialize([numbers], instance=instance).success  # and written again after
