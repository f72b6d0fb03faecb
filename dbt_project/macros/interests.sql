{#- How much a behavioural signal of day `day` counts against one of day `latest` (dates): halved
    every `interests.half_life_days` whole days before it. Decayed from the person's latest
    signal, not from CDP_AS_OF, a person's scores move only with what the person did, so the
    per-person model keeps them from build to build; the order of a person's categories is
    the same as if decayed from CDP_AS_OF, but for signals dated after it and ties the
    scores' rounding makes or breaks. -#}
{% macro interest_decay(day, latest) -%}
    pow(0.5, {{ cdp.days_between(day, latest) }} / {{ var('interests')['half_life_days'] }})
{%- endmacro %}
