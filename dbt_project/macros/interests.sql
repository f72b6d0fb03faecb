{#- How much a behavioural signal of time `at` still counts on CDP_AS_OF: halved every
    `interests.half_life_days` whole days; a signal of today (or later) counts whole. -#}
{% macro interest_decay(at) -%}
    pow(
        0.5,
        greatest({{ cdp.days_between('(' ~ at ~ ')::date', as_of_date()) }}, 0)
        / {{ var('interests')['half_life_days'] }}
    )
{%- endmacro %}
