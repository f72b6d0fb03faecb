{#- "Today" for recency, lifecycle and age: CDP_AS_OF when set, else the run's own date. Read
    only when the SQL is compiled to run: dbt re-parses a file whenever a variable it read while
    parsing changes, and the date changes every night. -#}
{% macro as_of_date() -%}
    {%- set as_of = (env_var('CDP_AS_OF', '') if execute else '')
        or run_started_at.strftime('%Y-%m-%d') -%}
    cast('{{ as_of }}' as date)
{%- endmacro %}
