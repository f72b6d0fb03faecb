"""Binds every resource from the environment (docs/configuration.md); secrets stay `dg.EnvVar`s."""

import os

import dagster as dg

from orchestration.defs.dbt.project import DBT_EXECUTABLE, DbtCli, dbt_project
from orchestration.resources import (
    GA4ExportResource,
    SheetsResource,
    ShopDatabaseResource,
    WarehouseResource,
)
from orchestration.settings import load_settings


def _secret(name: str) -> dg.EnvVar | None:
    return dg.EnvVar(name) if os.environ.get(name) else None


@dg.definitions
def resources() -> dg.Definitions:
    settings = load_settings()
    return dg.Definitions(
        resources={
            "warehouse": WarehouseResource(data_dir=str(settings.data_dir)),
            "ga4_export": GA4ExportResource(uri=settings.ga4_export_uri),
            "shop_db": ShopDatabaseResource(
                url=_secret("CDP_SHOP_DB_URL"),
                schema_name=settings.shop_db_schema,
                demo_db_path=str(settings.demo_shop_db_path),
            ),
            "sheets": SheetsResource(
                uri=settings.sheets_uri,
                api_url=settings.sheets_api_url,
                credentials_path=_secret("GOOGLE_APPLICATION_CREDENTIALS"),
            ),
            "dbt": DbtCli(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE),
        },
        executor=dg.in_process_executor,
    )
