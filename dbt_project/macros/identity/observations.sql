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

{#- What int_identity__observations' inputs look like now (cdp.input_marks), and which
    identifiers were erased. -#}
{% macro observations_marks() %}
    {{ cdp.input_marks(
        loaded=['stg_shop__customers', 'stg_shop__orders', 'stg_shop__email_events',
                'int_ga4__device_days'],
        rows=['stg_shop__email_events'],
        tables=['stg_sheets__survey_responses']) }}
    union all
    select 'erased', count(*)::string || '/' || coalesce(sum(hash(identifier_hash)), 0)::string
    from {{ source('privacy', 'erased_identifiers') }}
{% endmacro %}

{#- Post-hook of int_identity__observations: drop the rows that only marked a record to
    replace, and keep what the next build compares with (cdp.state_relation): `marks`, and
    `recent_devices`, the devices of the export days the export may still replace. -#}
{% macro keep_observations_state() %}
  {%- if target.type == 'duckdb' -%}
    delete from {{ this }} where identifier_type is null;
    create or replace table {{ cdp.state_relation('recent_devices') }} as
    {{ cdp.recent_devices() }};
    create or replace table {{ cdp.state_relation('marks') }} as
    {{ cdp.observations_marks() }}
  {%- endif -%}
{% endmacro %}
