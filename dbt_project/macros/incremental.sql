{#- Incremental staging: a nightly build transforms only the raw rows loaded since the model
    was last built (every raw row carries its load time); `cdp run --full-refresh` rebuilds
    from all of raw. Rows the erasure step deletes are deleted from staging as well. -#}
{% macro loaded_since_last_build() -%}
    {%- if is_incremental() %}
    where _loaded_at > (
        select coalesce(max(_loaded_at), '-infinity'::timestamptz) from {{ this }}
    )
    {%- endif %}
{%- endmacro %}
