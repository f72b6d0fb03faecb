{#- Per-person models kept from build to build: each build recomputes only the persons
    whose inputs changed since the last one, listed by int_customers__touched_persons.

    A per-person model declares itself with `config(**cdp.per_person_model())` (which tags it
    `per_person`) and reads its inputs through `where {{ cdp.touched_persons_only('customer_key') }}`
    (or a semi-join on the person's identifiers). Before it runs, the rows of every touched
    person are deleted from it; it then appends the rows of those who still exist. On its
    first build, on a full refresh, and when built without the list (cdp.only_touched_persons),
    it computes everyone. Spark's Parquet tables take no deletes: there the models are rebuilt
    whole every time. -#}

{%- macro per_person_model() -%}
  {{ return({
      'materialized': cdp.incremental_on_duckdb(),
      'incremental_strategy': 'append',
      'on_schema_change': 'sync_all_columns',
      'tags': ['per_person'],
      'pre_hook': ["{{ cdp.forget_touched_persons() if is_incremental() }}"],
      'post_hook': ["{{ cdp.touched_persons_applied() }}"]}) }}
{%- endmacro -%}

{#- A filter on a person key: the touched ones when only they are recomputed, else all. -#}
{%- macro touched_persons_only(column) -%}
  {%- if cdp.only_touched_persons() -%}
    {{ column }} in (select customer_key from {{ ref('int_customers__touched_persons') }})
  {%- else -%}
    true
  {%- endif -%}
{%- endmacro -%}

{#- Whether this build of a kept per-person model recomputes only the touched persons: only
    when this dbt invocation also listed them. A per-person model built by hand without
    int_customers__touched_persons cannot know what changed since the list was made (it is
    emptied once the models applied it), so it recomputes everyone. -#}
{%- macro only_touched_persons() -%}
  {{ return(is_incremental() and cdp.touched_persons_listed_now()) }}
{%- endmacro -%}

{%- macro touched_persons_listed_now() -%}
  {%- if not execute or target.type != 'duckdb' -%}{{ return(false) }}{%- endif -%}
  {%- set marks = cdp.touched_persons_marks_relation() -%}
  {%- if not cdp.relation_exists(marks) -%}{{ return(false) }}{%- endif -%}
  {%- set found = run_query("select count(*) from " ~ marks ~ " where input = 'this_build:"
        ~ "invocation' and mark = '" ~ invocation_id ~ "'") -%}
  {{ return(found.columns[0].values()[0] | int > 0) }}
{%- endmacro -%}

{#- What int_customers__touched_persons keeps of the inputs it compared (keep_touched_persons_state),
    and which per-person models applied its list (touched_persons_applied). -#}
{%- macro touched_persons_marks_relation() -%}
  {%- set listed = ref('int_customers__touched_persons') -%}
  {{ return(api.Relation.create(database=listed.database, schema=listed.schema,
      identifier=listed.identifier ~ '__marks', type='table')) }}
{%- endmacro -%}

{#- Pre-hook: the touched persons' rows go (a row without a person means all of them), or all
    rows when the model recomputes everyone. -#}
{%- macro forget_touched_persons() -%}
    delete from {{ this }}
  {%- if cdp.only_touched_persons() %}
    where customer_key in (select customer_key from {{ ref('int_customers__touched_persons') }})
        or exists (
            select 1 from {{ ref('int_customers__touched_persons') }} where customer_key is null
        )
  {%- endif %}
{%- endmacro -%}

{#- Post-hook of every per-person model: it applied the list this invocation made
    (`applied:<model>`), and once every per-person model has, the listed persons are all
    recomputed and the list is emptied. Until then (a failed build, or some of the models built
    by hand) they stay listed and the next build recomputes them too; a list an earlier
    invocation made is left to the models of the next one. -#}
{%- macro touched_persons_applied() -%}
  {%- if cdp.touched_persons_listed_now() -%}
    {%- set marks = cdp.touched_persons_marks_relation() -%}
    insert into {{ marks }} values ('applied:{{ this.identifier }}', '{{ invocation_id }}');
    delete from {{ ref('int_customers__touched_persons') }}
    where {{ cdp.every_per_person_model_applied(marks, "'" ~ invocation_id ~ "'") }}
  {%- endif -%}
{%- endmacro -%}

{#- Whether every per-person model applied the list of `invocation` (a SQL expression), by the
    `applied:` marks in `marks`. Two models whose hooks run at once each see only their own
    mark, and neither empties the list: so the next build asks the marks again, once both
    are committed, before it lists the same persons again. -#}
{%- macro every_per_person_model_applied(marks, invocation) -%}
  {%- set models = [] -%}
  {%- for node in graph.nodes.values() -%}
    {%- if node.resource_type == 'model' and 'per_person' in node.tags -%}
      {%- do models.append(node.name) -%}
    {%- endif -%}
  {%- endfor -%}
    ((
        select count(distinct input) from {{ marks }}
        where input like 'applied:%' and mark = {{ invocation }}
    ) = {{ models | length }})
{%- endmacro -%}

{#- What the inputs of the per-person models look like now (cdp.input_marks), and where the
    email engagement window started. -#}
{%- macro touched_persons_marks() -%}
    {{ cdp.input_marks(
        loaded=['stg_shop__orders', 'stg_shop__order_items', 'stg_shop__customers',
                'stg_shop__email_events', 'int_ga4__device_days'],
        rows=['stg_shop__email_events'],
        tables=['stg_sheets__survey_responses', 'stg_sheets__b2b_accounts',
                'stg_sheets__privacy_requests', 'stg_sheets__fx_rates', 'stg_shop__products']) }}
    union all
    select 'email_window_start', ({{ cdp.email_window_start() }})::string
{%- endmacro -%}

{#- Whether int_customers__touched_persons compares this build with the state the last one
    kept: not on its first build, a full refresh, or Spark (which keeps no state). -#}
{%- macro touched_persons_compared() -%}
  {%- if should_full_refresh() or not cdp.state_exists(['identifiers', 'marks', 'recent_devices'])
        or adapter.get_relation(database=this.database, schema=this.schema,
                                identifier=this.identifier) is none -%}
    {{ return(false) }}
  {%- endif -%}
  {#- the kept identifiers of a build before they had their nodes cannot be compared -#}
  {%- set columns = adapter.get_columns_in_relation(cdp.state_relation('identifiers'))
        | map(attribute='name') | list -%}
  {{ return('node' in columns) }}
{%- endmacro -%}

{#- Pre-hook of int_customers__touched_persons: every identifier new, gone, or with another
    person or sighting since the last build (`identifier_changes`: its person before and now,
    and its sightings now), which the model reads and its post-hook applies to the kept
    `identifiers`. Only the identifiers int_identity__identifier_keys listed as replaced since
    are compared, all of them when it replaced every row (cdp.replaced_identifier_keys).
    Without a comparison, no such table. -#}
{%- macro compare_identifier_keys() -%}
  {%- if target.type == 'duckdb' -%}
    {%- set changes = cdp.state_relation('identifier_changes') -%}
    {%- if cdp.touched_persons_compared() %}
    {%- set replaced = cdp.replaced_identifier_keys(ref('int_identity__identifier_keys')) %}
    {%- set listed = cdp.identifier_keys_replaced_listed(replaced) %}
    create or replace table {{ changes }} as
    {%- if listed %}
    with replaced as materialized (select distinct node from {{ replaced }})
    {%- endif %}
    select
        coalesce(now.node, before.node) as node,
        coalesce(now.identifier_type, before.identifier_type) as identifier_type,
        coalesce(now.identifier_value, before.identifier_value) as identifier_value,
        now.customer_key as now_key,
        before.customer_key as before_key,
        now.first_seen_at,
        now.last_seen_at
    {%- if listed %}
    from (
        select * from {{ ref('int_identity__identifier_keys') }}
        where node in (select node from replaced)
    ) as now
    full join (
        select * from {{ cdp.state_relation('identifiers') }}
        where node in (select node from replaced)
    ) as before
    {%- else %}
    from {{ ref('int_identity__identifier_keys') }} as now
    full join {{ cdp.state_relation('identifiers') }} as before
    {%- endif %}
        on now.node = before.node
    where now.customer_key is distinct from before.customer_key
        or now.first_seen_at is distinct from before.first_seen_at
        or now.last_seen_at is distinct from before.last_seen_at
    {%- else %}
    drop table if exists {{ changes }}
    {%- endif %}
  {%- endif -%}
{%- endmacro -%}

{#- Post-hook of int_customers__touched_persons: what the next build compares with, kept
    beside it (cdp.state_relation): `identifiers` (every identifier's person and first and last
    sighting; the changed ones replaced in place when this build compared, else written
    whole), `recent_devices` (the devices of the export days the export may still replace),
    `marks` (what the inputs look like). The identifiers listed as replaced are compared. -#}
{%- macro keep_touched_persons_state() -%}
  {%- if target.type == 'duckdb' -%}
    {%- set identifiers = cdp.state_relation('identifiers') -%}
    {%- set changes = cdp.state_relation('identifier_changes') -%}
    {%- if cdp.relation_exists(changes) %}
    delete from {{ identifiers }} where node in (select node from {{ changes }});
    insert into {{ identifiers }}
    select node, identifier_type, identifier_value, now_key, first_seen_at, last_seen_at
    from {{ changes }}
    where now_key is not null;
    drop table {{ changes }};
    {%- else %}
    create or replace table {{ identifiers }} as
    select node, identifier_type, identifier_value, customer_key, first_seen_at, last_seen_at
    from {{ ref('int_identity__identifier_keys') }};
    {%- endif %}
    {%- set replaced = cdp.replaced_identifier_keys(ref('int_identity__identifier_keys')) %}
    {%- if cdp.relation_exists(replaced) %}
    delete from {{ replaced }};
    {%- endif %}
    create or replace table {{ cdp.state_relation('recent_devices') }} as
    {{ cdp.recent_devices() }};
    create or replace table {{ cdp.state_relation('marks') }} as
    {{ cdp.touched_persons_marks() }}
    union all
    -- for people and tests: how many this build listed, and whether it listed everyone
    select 'this_build:touched', count(customer_key)::string from {{ this }}
    union all
    select 'this_build:everyone', (count(*) > count(customer_key))::string from {{ this }}
    union all
    -- which dbt invocation made the list: only its per-person models may rely on it
    select 'this_build:invocation', '{{ invocation_id }}'
  {%- endif -%}
{%- endmacro -%}

{#- Where int_customers__email_engagement's recent window starts: `engagement.window_days`
    before today. -#}
{%- macro email_window_start() -%}
    {{ as_of_date() }} - interval {{ var('engagement')['window_days'] }} day
{%- endmacro -%}

{#- Whether this build's list of touched persons holds a row without a person: everyone. -#}
{%- macro touched_everyone() -%}
  {%- set found = run_query("select count(*) > count(customer_key) from "
        ~ ref('int_customers__touched_persons')) -%}
  {{ return(found.columns[0].values()[0]) }}
{%- endmacro -%}

{#- Whether int_customers__co_purchases changes only the touched persons' pairs: when only they
    are recomputed, not all of them, and it kept the purchases it last counted. -#}
{%- macro co_purchases_counted_since() -%}
  {{ return(cdp.only_touched_persons() and cdp.state_exists(['counted'])
      and not cdp.touched_everyone()) }}
{%- endmacro -%}

{#- Pre-hook of int_customers__co_purchases: counted whole again, the kept counts go. -#}
{%- macro forget_co_purchases() -%}
  {%- if not cdp.co_purchases_counted_since() %}
    delete from {{ this }}
  {%- endif %}
{%- endmacro -%}

{#- Post-hook of int_customers__co_purchases: pairs no one bought any more go, and `counted`
    becomes the purchases the counts are now made from (the touched persons' replaced, or all
    written again). -#}
{%- macro keep_counted_purchases() -%}
  {%- if target.type == 'duckdb' -%}
    {%- set counted = cdp.state_relation('counted') -%}
    {%- set bought = ref('int_customers__products_bought') -%}
    {%- if cdp.co_purchases_counted_since() %}
    delete from {{ this }} where together = 0;
    delete from {{ counted }}
    where customer_key in (select customer_key from {{ ref('int_customers__touched_persons') }});
    insert into {{ counted }}
    select customer_key, product_id from {{ bought }}
    where customer_key in (select customer_key from {{ ref('int_customers__touched_persons') }});
    {%- else %}
    create or replace table {{ counted }} as select customer_key, product_id from {{ bought }};
    {%- endif %}
  {%- endif -%}
{%- endmacro -%}
