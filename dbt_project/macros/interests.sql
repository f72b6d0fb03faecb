{#- Behavioural interest decays with the age of a signal: halved every
    `interests.half_life_days` whole days before the person's latest signal, which counts
    whole. Counted from the person's latest signal, not from CDP_AS_OF, a person's scores move
    only with what the person did, so the per-person model keeps them from build to build; the
    order of the person's categories is the same either way. A signal's weight is grown from a
    fixed day (`interest_growth`), so a device's signals can be summed before its person is
    known, and the person's sum scaled back by the growth of the latest day. -#}
{% macro interest_growth(at) -%}
    pow(
        2.0,
        {{ cdp.days_between("date '2000-01-01'", '(' ~ at ~ ')::date') }}
        / {{ var('interests')['half_life_days'] }}
    )
{%- endmacro %}
