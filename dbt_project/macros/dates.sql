{#- "Today" for recency, lifecycle and age: CDP_AS_OF when set, else the run's own date. -#}
{% macro as_of_date() -%}
    {%- set as_of = env_var('CDP_AS_OF', '') or run_started_at.strftime('%Y-%m-%d') -%}
    cast('{{ as_of }}' as date)
{%- endmacro %}
