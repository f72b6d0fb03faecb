{#- The value of one GA4 event parameter. DuckDB filters the repeated field in place; other
    warehouses (BigQuery: a scalar subquery over UNNEST) add their own implementation. -#}
{% macro ga4_param(column, key, value_type='string_value') -%}
    {{ return(adapter.dispatch('ga4_param', 'cdp')(column, key, value_type)) }}
{%- endmacro %}

{% macro default__ga4_param(column, key, value_type) -%}
    list_filter({{ column }}, lambda p: p.key = '{{ key }}')[1].value.{{ value_type }}
{%- endmacro %}

{% macro spark__ga4_param(column, key, value_type) -%}
    try_element_at(filter({{ column }}, p -> p.key = '{{ key }}'), 1).value.{{ value_type }}
{%- endmacro %}

{% macro bigquery__ga4_param(column, key, value_type) -%}
    (select p.value.{{ value_type }} from unnest({{ column }}) as p where p.key = '{{ key }}' limit 1)
{%- endmacro %}

{#- GA4 timestamps are INT64 microseconds since the epoch, UTC. -#}
{% macro micros_to_timestamp(column) -%}
    {{ return(adapter.dispatch('micros_to_timestamp', 'cdp')(column)) }}
{%- endmacro %}

{% macro default__micros_to_timestamp(column) -%}
    make_timestamptz({{ column }})
{%- endmacro %}

{% macro spark__micros_to_timestamp(column) -%}
    timestamp_micros({{ column }})
{%- endmacro %}

{% macro bigquery__micros_to_timestamp(column) -%}
    timestamp_micros({{ column }})
{%- endmacro %}
