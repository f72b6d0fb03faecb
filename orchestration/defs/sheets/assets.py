import dagster as dg

from orchestration.defs.sheets.extract import TABS, load_tab, read_tabs
from orchestration.errors import EXTRACT_RETRY_POLICY, fail_at_once_on_terminal_errors
from orchestration.resources import SheetsResource, WarehouseResource
from orchestration.warehouse import table_row_count


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["raw_sheets", tab],
            group_name="sheets",
            kinds={"duckdb", "googlesheets"},
            description=f"The `{tab}` tab, read whole as text.",
        )
        for tab in TABS
    ],
    can_subset=True,
    name="sheets_tabs",
    retry_policy=EXTRACT_RETRY_POLICY,
)
def sheets_tabs(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, sheets: SheetsResource
):
    selected = [t for t in TABS if dg.AssetKey(["raw_sheets", t]) in context.selected_asset_keys]
    with fail_at_once_on_terminal_errors():
        tabs = read_tabs(
            sheets.uri, selected, sheets.api_url, sheets.credentials_path, log=context.log
        )
    with warehouse.connect() as con:
        for tab in tabs:
            with fail_at_once_on_terminal_errors():
                stats = load_tab(con, tab, context.run.run_id, sheets.uri)
            context.log.info(
                f"{tab.name}: {stats.rows_loaded} rows loaded, {stats.rows_quarantined} quarantined"
            )
            yield dg.MaterializeResult(
                asset_key=["raw_sheets", tab.name],
                metadata={
                    **stats.as_metadata(),
                    "dagster/row_count": table_row_count(con, f"raw_sheets.{tab.name}"),
                    "columns": ", ".join(tab.header),
                    "source": sheets.uri,
                },
            )
