{#- Identifier normalization shared by every staging model (CONTRACT §3). -#}
{% macro normalize_email(column) -%}
    nullif(lower(trim({{ column }})), '')
{%- endmacro %}

{#- Text from hand-edited sources: trimmed, empty means unknown. -#}
{% macro clean_text(column) -%}
    nullif(trim({{ column }}), '')
{%- endmacro %}

{#- Timestamps typed into a sheet: ISO first, then the common day-first and month-first forms. -#}
{% macro parse_sheet_timestamp(column) -%}
    coalesce(
        try_cast({{ clean_text(column) }} as timestamp),
        try_strptime({{ clean_text(column) }}, ['%d/%m/%Y %H:%M:%S', '%d/%m/%Y %H:%M', '%d/%m/%Y',
                                                '%m/%d/%Y %H:%M:%S', '%m/%d/%Y'])
    )
{%- endmacro %}
