{#- int_campaigns__recipients kept from build to build (DuckDB). Its `__counted` state holds how
    many email events it was last computed from, the newest load time among them, and the
    project's definition. A build recomputes only the groups of the events loaded since; when
    events were deleted or replaced since (an erasure, an event the shop corrected), or the
    project changed, it recomputes every group. -#}

{%- macro recipients_counted_since() -%}
  {%- if not is_incremental() or not cdp.state_exists(['counted']) -%}
    {{ return(false) }}
  {%- endif -%}
  {%- set events = ref('stg_shop__email_events') -%}
  {%- set found = run_query(
        "select (select count(*) from " ~ events ~ ") = rows + (select count(*) from "
        ~ events ~ " where _loaded_at > counted.loaded_at) and definition = '"
        ~ cdp.build_definition() ~ "' from " ~ cdp.state_relation('counted') ~ " as counted") -%}
  {{ return(found.columns[0].values()[0] == true) }}
{%- endmacro -%}

{#- The (campaign, variant, email) groups of the email events loaded since the last build. -#}
{%- macro changed_recipients() -%}
    select distinct campaign_id, variant, email
    from {{ ref('stg_shop__email_events') }}
    where _loaded_at > (select loaded_at from {{ cdp.state_relation('counted') }})
        and campaign_id is not null and email is not null
{%- endmacro -%}

{#- Pre-hook: the groups recomputed go, all of them when every group is. -#}
{%- macro forget_changed_recipients() -%}
    delete from {{ this }}
  {%- if cdp.recipients_counted_since() %}
    where exists (
        select 1 from ({{ cdp.changed_recipients() }}) as changed
        where changed.campaign_id = {{ this }}.campaign_id
            and changed.variant is not distinct from {{ this }}.variant
            and changed.email = {{ this }}.email
    )
  {%- endif %}
{%- endmacro -%}

{#- Post-hook: what the groups are now computed from. -#}
{%- macro keep_counted_email_events() -%}
  {%- if target.type == 'duckdb' %}
    {%- set events = ref('stg_shop__email_events') %}
    create or replace table {{ cdp.state_relation('counted') }} as
    select count(*) as rows,
           coalesce(max(_loaded_at), '-infinity'::timestamptz) as loaded_at,
           '{{ cdp.build_definition() }}' as definition
    from {{ events }}
  {%- endif -%}
{%- endmacro -%}
