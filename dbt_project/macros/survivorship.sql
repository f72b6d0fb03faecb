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

{#- The surviving value of every attribute, one column each, from ranked candidates. -#}
{% macro survivors(ranked_relation) -%}
    select
        customer_key,
        {%- for attribute in var('survivorship') %}
        max(value) filter (where attribute = '{{ attribute }}') as {{ attribute }}
        {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from {{ ranked_relation }}
    group by customer_key
{%- endmacro %}

{#- Gender as one of female, male, other; NULL when unknown so that another source can win. -#}
{% macro normalize_gender(column) -%}
    (select g.gender from {{ ref('gender_spellings') }} as g
     where g.spelling = lower({{ strip(column) }}))
{%- endmacro %}
