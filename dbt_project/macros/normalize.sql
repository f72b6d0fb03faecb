{#- Identifier normalization shared by every staging model (docs/sources.md, "Identity rules"). Invalid values
    become NULL; the matching *_problem macro says why, for the identity audit. -#}

{#- Trim spaces, tabs, line breaks and no-break spaces (plain trim() only removes spaces). -#}
{% macro strip(column) -%}
    {{ cdp.trim_chars(column, "' ' || chr(9) || chr(10) || chr(13) || chr(160)") }}
{%- endmacro %}

{% macro normalize_email(column) -%}
    case when {{ cdp.regex_full_match('lower(' ~ strip(column) ~ ')', '[^@\s]+@[^@\s]+\.[^@\s]+') }}
         then lower({{ strip(column) }}) end
{%- endmacro %}

{% macro email_problem(column) -%}
    case when nullif({{ strip(column) }}, '') is not null
          and not {{ cdp.regex_full_match('lower(' ~ strip(column) ~ ')', '[^@\s]+@[^@\s]+\.[^@\s]+') }}
         then 'not an email address' end
{%- endmacro %}

{#- The region a phone number is read in: the record's country, else CDP_DEFAULT_PHONE_REGION. -#}
{% macro phone_region(country_column=none) -%}
    {%- set default = "'" ~ (env_var('CDP_DEFAULT_PHONE_REGION', 'US') | upper) ~ "'" -%}
    {%- if country_column -%} coalesce(upper(nullif(trim({{ country_column }}), '')), {{ default }})
    {%- else -%} {{ default }} {%- endif -%}
{%- endmacro %}

{#- E.164 via libphonenumber, registered on DuckDB by the project's dbt-duckdb plugin
    (orchestration/defs/identity/normalize.py). Another warehouse needs its own function. -#}
{% macro normalize_phone(column, country_column=none) -%}
    {{ return(adapter.dispatch('normalize_phone', 'cdp')(column, country_column)) }}
{%- endmacro %}

{% macro default__normalize_phone(column, country_column) -%}
    cdp_phone_e164({{ column }}, {{ phone_region(country_column) }})
{%- endmacro %}

{% macro phone_problem(column, country_column=none) -%}
    {{ return(adapter.dispatch('phone_problem', 'cdp')(column, country_column)) }}
{%- endmacro %}

{% macro default__phone_problem(column, country_column) -%}
    cdp_phone_problem({{ column }}, {{ phone_region(country_column) }})
{%- endmacro %}

{#- Text from hand-edited sources: trimmed, empty means unknown. -#}
{% macro clean_text(column) -%}
    nullif({{ strip(column) }}, '')
{%- endmacro %}

{#- Timestamps typed into a sheet: ISO first, then the common day-first and month-first forms. -#}
{% macro parse_sheet_timestamp(column) -%}
    {{ return(adapter.dispatch('parse_sheet_timestamp', 'cdp')(column)) }}
{%- endmacro %}

{% macro duckdb__parse_sheet_timestamp(column) -%}
    coalesce(
        try_cast({{ clean_text(column) }} as timestamp),
        try_strptime({{ clean_text(column) }}, ['%d/%m/%Y %H:%M:%S', '%d/%m/%Y %H:%M', '%d/%m/%Y',
                                                '%m/%d/%Y %H:%M:%S', '%m/%d/%Y'])
    )
{%- endmacro %}

{% macro spark__parse_sheet_timestamp(column) -%}
    coalesce(
        try_cast({{ clean_text(column) }} as timestamp)
        {%- for format in ['dd/MM/yyyy HH:mm:ss', 'dd/MM/yyyy HH:mm', 'dd/MM/yyyy',
                           'MM/dd/yyyy HH:mm:ss', 'MM/dd/yyyy'] %},
        try_to_timestamp({{ clean_text(column) }}, '{{ format }}')
        {%- endfor %}
    )
{%- endmacro %}
