{#- What identity stitching needs besides plain SQL: the previous run's state, the run's id,
    salted hashes of erased identifiers, and a regular expression match. -#}

{#- The table `model_name` of this model's schema as the previous run left it, or no rows on
    the first run. For state a model carries from run to run (stable keys) that would be a
    cycle as a `ref`: it is read before the run replaces it. -#}
{% macro previous_state(model_name, columns) %}
  {%- set relation = adapter.get_relation(
        database=this.database, schema=this.schema, identifier=model_name) if execute else none -%}
  {%- if relation is not none -%}
    select {{ columns.keys() | join(', ') }} from {{ relation }}
  {%- else -%}
    select
    {%- for name, type in columns.items() %} cast(null as {{ type }}) as {{ name }}{{ ',' if not loop.last }}{% endfor %}
    where 1 = 0
  {%- endif -%}
{% endmacro %}

{#- The Dagster run that builds the models (set by the dbt asset), else dbt's own id; read when
    the SQL is compiled to run, as as_of_date() is (a new id every run). -#}
{% macro run_id() -%}
  '{{ env_var('DAGSTER_RUN_ID', invocation_id) if execute else invocation_id }}'
{%- endmacro %}

{#- sha256 of "salt:type:value", as the erasure step records erased identifiers. The salt is
    never in the SQL: the project's dbt-duckdb plugin sets it as a session variable. -#}
{% macro erasure_hash(kind, value) %}
  {{ return(adapter.dispatch('erasure_hash', 'cdp')(kind, value)) }}
{% endmacro %}

{% macro duckdb__erasure_hash(kind, value) -%}
  sha256(getvariable('cdp_privacy_salt') || ':' || {{ kind }} || ':' || {{ value }})
{%- endmacro %}

{#- Spark: the session variable orchestration/spark.py declares -#}
{% macro spark__erasure_hash(kind, value) -%}
  sha2(concat(cdp_privacy_salt, ':', {{ kind }}, ':', {{ value }}), 256)
{%- endmacro %}

{#- elsewhere the engine's session registers cdp_erasure_hash(type, value), holding the salt -#}
{% macro default__erasure_hash(kind, value) -%}
  cdp_erasure_hash({{ kind }}, {{ value }})
{%- endmacro %}

{#- Whether any identifier was ever erased: without, nothing needs hashing. -#}
{% macro erasures_recorded() %}
  {%- if not execute -%}{{ return(false) }}{%- endif -%}
  {%- set relation = adapter.get_relation(
        database=this.database, schema='privacy', identifier='erased_identifiers') -%}
  {%- if relation is none -%}{{ return(false) }}{%- endif -%}
  {%- set rows = run_query('select count(*) from ' ~ relation).columns[0].values()[0] -%}
  {{ return(rows | int > 0) }}
{% endmacro %}

{#- Post-hook of incremental models that keep rows across runs: delete the rows holding an
    erased identifier. `identifiers` maps identifier type to the column holding it. Each
    distinct value is hashed once. -#}
{% macro forget_erased(identifiers) %}
  {%- if config.get('materialized') == 'incremental' and cdp.erasures_recorded() -%}
    delete from {{ this }} where
    {%- for kind, column in identifiers.items() %}
      {{ column }} in (
        select value from (
            select distinct {{ column }} as value from {{ this }} where {{ column }} is not null
        ) as candidates
        where {{ cdp.erasure_hash("'" ~ kind ~ "'", 'value') }} in (
            select identifier_hash from {{ source('privacy', 'erased_identifiers') }}
            where identifier_type = '{{ kind }}'
        )
      ){{ ' or' if not loop.last }}
    {%- endfor %}
  {%- endif -%}
{% endmacro %}

{% macro regex_matches(value, pattern) %}
  {{ return(adapter.dispatch('regex_matches', 'cdp')(value, pattern)) }}
{% endmacro %}

{% macro duckdb__regex_matches(value, pattern) -%}
  regexp_matches({{ value }}, {{ pattern }})
{%- endmacro %}

{% macro default__regex_matches(value, pattern) -%}
  {{ value }} rlike {{ pattern }}
{%- endmacro %}
