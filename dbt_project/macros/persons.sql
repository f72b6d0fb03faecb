{#- Per-person models kept from build to build: each build recomputes only the persons
    whose inputs changed since the last one, listed by int_customers__touched_persons.

    A per-person model declares itself with `config(**cdp.per_person_model())` and reads its
    inputs through `where {{ cdp.touched_persons_only('customer_key') }}` (or a semi-join on
    the person's identifiers). Before it runs, the rows of every touched person are deleted
    from it; it then appends the rows of those who still exist. On its first build, and on a
    full refresh, it computes everyone. Spark's Parquet tables take no deletes: there the
    models are rebuilt whole every time. -#}

{%- macro per_person_model(consumes_touched_persons=false) -%}
  {%- set post_hook = [] -%}
  {%- if consumes_touched_persons -%}
    {%- do post_hook.append("{{ cdp.touched_persons_applied() }}") -%}
  {%- endif -%}
  {{ return({
      'materialized': cdp.incremental_on_duckdb(),
      'incremental_strategy': 'append',
      'on_schema_change': 'sync_all_columns',
      'pre_hook': ["{{ cdp.forget_touched_persons() if is_incremental() }}"],
      'post_hook': post_hook}) }}
{%- endmacro -%}

{#- A filter on a person key: all persons on a full build, the touched ones otherwise. -#}
{%- macro touched_persons_only(column) -%}
  {%- if is_incremental() -%}
    {{ column }} in (select customer_key from {{ ref('int_customers__touched_persons') }})
  {%- else -%}
    true
  {%- endif -%}
{%- endmacro -%}

{#- Pre-hook: the touched persons' rows go; a row without a person means all of them. -#}
{%- macro forget_touched_persons() -%}
    delete from {{ this }}
    where customer_key in (select customer_key from {{ ref('int_customers__touched_persons') }})
        or exists (
            select 1 from {{ ref('int_customers__touched_persons') }} where customer_key is null
        )
{%- endmacro -%}

{#- Post-hook of the last per-person model: the touched persons are now all recomputed. Until
    then (a failed build), they stay listed and the next build recomputes them too. -#}
{%- macro touched_persons_applied() -%}
  {%- if target.type == 'duckdb' -%}
    delete from {{ ref('int_customers__touched_persons') }}
  {%- endif -%}
{%- endmacro -%}

{#- The state int_customers__touched_persons keeps beside itself: `identifiers` (every
    identifier's person and first and last sighting at the last build), `marks` (what the
    inputs looked like then), `recent_devices` (the devices of the recent export days, which
    the export may still replace). -#}
{%- macro touched_persons_state(part) -%}
  {{ return(api.Relation.create(database=this.database, schema=this.schema,
      identifier=this.identifier ~ '__' ~ part, type='table')) }}
{%- endmacro -%}

{#- What the inputs of the per-person models look like now, one (input, mark) row each:
    `loaded:` the newest load time of a table read by what was loaded since; `rows:` a row
    count; `day:` an export day's device days; `table:` a small table's fingerprint;
    `definition` the project and settings (without one, every build redoes everyone). -#}
{%- macro touched_persons_marks() -%}
    select 'definition' as input,
           '{{ env_var("CDP_BUILD_DEFINITION", invocation_id) }}' as mark
    {%- for model in ['stg_shop__orders', 'stg_shop__order_items', 'stg_shop__customers',
                      'stg_shop__email_events', 'int_ga4__device_days'] %}
    union all
    select 'loaded:{{ model }}', coalesce(max(_loaded_at), '-infinity'::timestamptz)::string
    from {{ ref(model) }}
    {%- endfor %}
    union all
    select 'rows:stg_shop__email_events', count(*)::string from {{ ref('stg_shop__email_events') }}
    union all
    select 'email_window_start', ({{ cdp.email_window_start() }})::string
    union all
    select 'day:' || export_day::string, count(*)::string || '/' || max(_loaded_at)::string
    from {{ ref('int_ga4__device_days') }}
    group by export_day
    {%- for model in ['stg_sheets__survey_responses', 'stg_sheets__b2b_accounts',
                      'stg_sheets__privacy_requests', 'stg_sheets__fx_rates',
                      'stg_shop__products'] %}
    union all
    select 'table:{{ model }}', count(*)::string || '/' || coalesce(sum(hash(t)), 0)::string
    from {{ ref(model) }} as t
    {%- endfor %}
{%- endmacro -%}

{#- How many export days before the newest the export may still replace: an intraday shard
    is rewritten through its day, the daily shard replaces it the next day, and late hits
    update a daily table for up to 72 hours. A replaced day among them costs the persons of
    its devices; an older one, everyone. -#}
{%- macro replaceable_export_days() -%}3{%- endmacro -%}

{#- Post-hook of int_customers__touched_persons: what the next build compares with. -#}
{%- macro keep_touched_persons_state() -%}
  {%- if target.type == 'duckdb' -%}
    create or replace table {{ cdp.touched_persons_state('identifiers') }} as
    select identifier_type, identifier_value, customer_key, first_seen_at, last_seen_at
    from {{ ref('int_identity__identifier_keys') }};
    create or replace table {{ cdp.touched_persons_state('recent_devices') }} as
    select distinct export_day, device_id
    from {{ ref('int_ga4__device_days') }}
    where export_day >= (select max(export_day) from {{ ref('int_ga4__device_days') }})
        - {{ cdp.replaceable_export_days() }};
    create or replace table {{ cdp.touched_persons_state('marks') }} as
    {{ cdp.touched_persons_marks() }}
    union all
    -- for people and tests: how many this build listed, and whether it listed everyone
    select 'this_build:touched', count(customer_key)::string from {{ this }}
    union all
    select 'this_build:everyone', (count(*) > count(customer_key))::string from {{ this }}
  {%- endif -%}
{%- endmacro -%}

{#- Where int_customers__email_engagement's recent window starts: `engagement.window_days`
    before today. -#}
{%- macro email_window_start() -%}
    {{ as_of_date() }} - interval {{ var('engagement')['window_days'] }} day
{%- endmacro -%}
