{#- Incremental staging: a nightly build transforms only the raw rows loaded since the model
    was last built (every raw row carries its load time); `cdp run --full-refresh` rebuilds
    from all of raw. Rows the erasure step deletes are deleted from staging as well. -#}
{#- Staging models kept incrementally where the engine deletes and inserts in place (DuckDB).
    Spark's Parquet tables take neither deletes nor merges, so there each build rebuilds them
    from raw, which the erasure step has already purged. -#}
{% macro incremental_on_duckdb() %}
  {{ return('incremental' if target.type == 'duckdb' else 'table') }}
{% endmacro %}

{% macro loaded_since_last_build() -%}
    {%- if is_incremental() %}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list %}
        {%- if '_loaded_at' not in columns %}
            {{ exceptions.raise_compiler_error(
                this ~ " was built before staging became incremental (no _loaded_at): "
                ~ "rebuild it once with `cdp run --full-refresh`") }}
        {%- endif %}
    where _loaded_at > (
        select coalesce(max(_loaded_at), '-infinity'::timestamptz) from {{ this }}
    )
    {%- endif %}
{%- endmacro %}

{#- Post-hook of the GA4 aggregates kept per export day: drop the days no event is left of
    (delete+insert only replaces days that still have rows). -#}
{% macro forget_lost_export_days() %}
    delete from {{ this }} where export_day not in (
        select distinct export_day from {{ ref('stg_ga4__events') }}
    )
{% endmacro %}
