{#- The ISO code every amount in the marts is in: CDP_REPORTING_CURRENCY, read in one place. -#}
{% macro reporting_currency() -%}
    {{ env_var('CDP_REPORTING_CURRENCY', 'USD') | upper }}
{%- endmacro %}
