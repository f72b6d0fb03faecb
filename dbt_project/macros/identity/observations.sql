{#- One row per (record, identifier) from a relation with one column per identifier type
    (`kinds`): source, record_id, identifier_type, identifier_value, first_seen_at,
    last_seen_at; NULL identifiers are left out. -#}
{% macro identifiers_by_type(records, kinds) %}
  {{ return(adapter.dispatch('identifiers_by_type', 'cdp')(records, kinds)) }}
{% endmacro %}

{#- one pass over the records -#}
{% macro duckdb__identifiers_by_type(records, kinds) %}
    select source, record_id, identifier_type, identifier_value, first_seen_at, last_seen_at
    from (
        unpivot {{ records }}
        on {{ kinds | join(', ') }}
        into name identifier_type value identifier_value
    ) as unpivoted
    where identifier_value is not null
{% endmacro %}

{% macro default__identifiers_by_type(records, kinds) %}
    {%- for kind in kinds %}
    {{ 'union all' if not loop.first }}
    select
        source,
        record_id,
        '{{ kind }}' as identifier_type,
        {{ kind }} as identifier_value,
        first_seen_at,
        last_seen_at
    from {{ records }}
    where {{ kind }} is not null
    {%- endfor %}
{% endmacro %}

{#- An identifier's node number: the first 60 bits of md5("type:value"), the same on every
    engine (a positive bigint). -#}
{% macro identifier_number(kind, value) %}
  {{ return(adapter.dispatch('identifier_number', 'cdp')(kind, value)) }}
{% endmacro %}

{% macro duckdb__identifier_number(kind, value) -%}
    cast('0x' || substr(md5({{ kind }} || ':' || {{ value }}), 1, 15) as bigint)
{%- endmacro %}

{% macro default__identifier_number(kind, value) -%}
    cast(conv(substr(md5(concat({{ kind }}, ':', {{ value }})), 1, 15), 16, 10) as bigint)
{%- endmacro %}
