{#- Rank of a (attribute, source) candidate by the `survivorship` var: 1 is the most trusted
    source; candidates from sources not listed for the attribute get NULL and are dropped. -#}
{% macro survivorship_rank(attribute_column, source_column) -%}
    case
    {%- for attribute, sources in var('survivorship').items() %}
        {%- for source in sources %}
        when {{ attribute_column }} = '{{ attribute }}' and {{ source_column }} = '{{ source }}'
            then {{ loop.index }}
        {%- endfor %}
    {%- endfor %}
    end
{%- endmacro %}

{#- The surviving value of every attribute, one column each, from the candidates: the most
    trusted source, then the newest, then the smallest value (an aggregate per person and
    attribute, not a sort of every candidate). -#}
{% macro survivors(candidates) -%}
    select
        customer_key,
        {#- one survivor per person and attribute below: any value of it is the value #}
        {%- for attribute in var('survivorship') %}
        any_value(value) filter (where attribute = '{{ attribute }}') as {{ attribute }}
        {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from (
        select
            customer_key,
            attribute,
            min_by(value, {{ cdp.make_struct([
                ('source_rank', 'source_rank'),
                ('undated', 'observed_at is null'),
                ('newest_first', 'coalesce(-' ~ cdp.epoch_microseconds('observed_at') ~ ', 0)'),
                ('value', 'value')]) }}) as value
        from {{ candidates }}
        where source_rank is not null
        group by customer_key, attribute
    ) as survivors
    group by customer_key
{%- endmacro %}

{#- Gender as one of female, male, other; NULL when unknown so that another source can win. -#}
{% macro normalize_gender(column) -%}
    (select g.gender from {{ ref('gender_spellings') }} as g
     where g.spelling = lower({{ strip(column) }}))
{%- endmacro %}
