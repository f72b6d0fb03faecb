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
