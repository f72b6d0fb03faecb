{#- Incremental staging: a nightly build transforms only the raw rows loaded since the model
    was last built (every raw row carries its load time); `cdp run --full-refresh` rebuilds
    from all of raw. Rows the erasure step deletes are deleted from staging as well. -#}
{#- Staging models kept incrementally where the engine deletes and inserts in place (DuckDB).
    Spark's Parquet tables take neither deletes nor merges, so there each build rebuilds them
    from raw, which the erasure step has already purged. -#}
{% macro incremental_on_duckdb() %}
  {{ return('incremental' if target.type == 'duckdb' else 'table') }}
{% endmacro %}

{#- Post-hook of a kept model: no value of `columns` twice in it (`relation`, the model by
    default), checked before the build commits, so a kept table never holds a duplicate and
    its uniqueness needs no test of all its rows (DuckDB; Spark's tables are built whole and
    tested whole). `written` is a filter keeping, of every duplicate that includes a row this
    build wrote, all its rows (none: every row was written). -#}
{% macro written_once(columns, written=none, relation=none) %}
  {%- set relation = relation or this %}
  {%- if target.type == 'duckdb' %}
    select error('{{ relation }}: ' || count(*) || ' value(s) of {{ columns | join(", ") }}'
        || ' twice, e.g. ' || any_value(duplicate::varchar))
    from (
        select ({{ columns | join(', ') }}) as duplicate
        from {{ relation }}
        {%- if written is not none %}
        where {{ written }}
        {%- endif %}
        group by duplicate
        having count(*) > 1
    ) as twice
    having count(*) > 0
  {%- endif %}
{% endmacro %}

{#- A staging model replacing rows by `key` (delete+insert) has `columns` unique without a test
    of all its rows: its pre-hook `note_loaded_before()` notes the newest load it holds, and its
    post-hook `loaded_once(columns, key)` checks, before the build commits, the rows of every
    `key` it wrote (both rows of a duplicate share `key`; every row after a build from scratch).
    DuckDB only: Spark's tables are built whole and tested whole. -#}
{% macro note_loaded_before() %}
  {%- if target.type == 'duckdb' %}
    create or replace temp table {{ this.identifier }}__loaded_before as
    select {{ '(select max(_loaded_at) from ' ~ this ~ ')' if is_incremental() else 'null' }}
        ::timestamptz as loaded_at
  {%- endif %}
{% endmacro %}

{% macro loaded_once(columns, key) %}
  {{- cdp.written_once(columns, key ~ " in (select " ~ key ~ " from " ~ this
        ~ " where _loaded_at > (select coalesce(loaded_at, '-infinity') from "
        ~ this.identifier ~ "__loaded_before))") -}}
{% endmacro %}

{#- `checked=false`: the model's pre-hook adds `_loaded_at` itself (forget_replaced_tab_rows). -#}
{% macro loaded_since_last_build(checked=true) -%}
    {%- if is_incremental() %}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list %}
        {%- if checked and '_loaded_at' not in columns %}
            {{ exceptions.raise_compiler_error(
                this ~ " was built before staging became incremental (no _loaded_at): "
                ~ "rebuild it once with `cdp run --full-refresh`") }}
        {%- endif %}
    where _loaded_at > (
        select coalesce(max(_loaded_at), '-infinity'::timestamptz) from {{ this }}
    )
    {%- endif %}
{%- endmacro %}

{#- A staging model kept from a Sheets tab. The extractor loads a tab whole, and only when its
    content changed (every row then has the same new `_loaded_at`), so the model inserts the
    rows loaded since it was last built (`loaded_since_last_build(checked=false)`) and this
    pre-hook first deletes what a new load replaced, plus the rows the erasure step deleted
    from the tab (`row_column` is the tab's `_row_number`). A night with the tab unchanged
    then costs nothing, however costly the cleaning (phone numbers). A table built before it
    was kept gets its `_loaded_at` column here, empty, so all its rows go. -#}
{% macro forget_replaced_tab_rows(tab, row_column) %}
  {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list %}
  {%- if '_loaded_at' not in columns %}
    alter table {{ this }} add column _loaded_at timestamptz;
  {%- endif %}
    delete from {{ this }}
    where _loaded_at is distinct from (select max(_loaded_at) from {{ tab }})
        or {{ row_column }} not in (select _row_number from {{ tab }})
{% endmacro %}

{#- Post-hook of the GA4 aggregates kept per export day: drop the days no event is left of
    (delete+insert only replaces days that still have rows). -#}
{% macro forget_lost_export_days() %}
    delete from {{ this }} where export_day not in (
        select distinct export_day from {{ ref('stg_ga4__events') }}
    )
{% endmacro %}

{#- State a model keeps beside itself to compare one build with the next: `<model>__<part>`. -#}
{%- macro state_relation(part) -%}
  {{ return(api.Relation.create(database=this.database, schema=this.schema,
      identifier=this.identifier ~ '__' ~ part, type='table')) }}
{%- endmacro -%}

{#- Whether a table exists, asked of the warehouse rather than dbt's cache of relations, which
    does not know the tables hooks and other models' state made during this build. -#}
{%- macro relation_exists(relation) -%}
  {%- if not execute -%}{{ return(false) }}{%- endif -%}
  {%- set found = run_query("select count(*) from information_schema.tables"
        ~ " where table_catalog = '" ~ relation.database ~ "' and table_schema = '"
        ~ relation.schema ~ "' and table_name = '" ~ relation.identifier ~ "'") -%}
  {{ return(found.columns[0].values()[0] | int > 0) }}
{%- endmacro -%}

{#- Whether every listed part of this model's state exists (it does not before the first
    build, nor on Spark, which keeps no state). -#}
{%- macro state_exists(parts) -%}
  {%- if not execute or target.type != 'duckdb' -%}{{ return(false) }}{%- endif -%}
  {%- for part in parts -%}
    {%- if not cdp.relation_exists(cdp.state_relation(part)) -%}{{ return(false) }}{%- endif -%}
  {%- endfor -%}
  {{ return(true) }}
{%- endmacro -%}

{#- What decides what a build computes, the date aside (CDP_BUILD_DEFINITION, set by `cdp run`):
    state kept from a build under another definition is computed again. Without it (dbt run by
    hand) every build differs. -#}
{%- macro build_definition() -%}
  {{ return(env_var('CDP_BUILD_DEFINITION', invocation_id)) }}
{%- endmacro -%}

{#- What a model's inputs look like now, one (input, mark) row each, for the next build to
    compare with: `definition` the project and settings (without one, every build differs);
    `loaded:` the newest load time of a table read by what was loaded since; `rows:` a row
    count; `day:` an export day's device days; `table:` a small table's fingerprint. -#}
{%- macro input_marks(loaded, rows=[], tables=[]) -%}
    select 'definition' as input,
           '{{ cdp.build_definition() }}' as mark
    {%- for model in loaded %}
    union all
    select 'loaded:{{ model }}', coalesce(max(_loaded_at), '-infinity'::timestamptz)::string
    from {{ ref(model) }}
    {%- endfor %}
    {%- for model in rows %}
    union all
    select 'rows:{{ model }}', count(*)::string from {{ ref(model) }}
    {%- endfor %}
    union all
    select 'day:' || export_day::string, count(*)::string || '/' || max(_loaded_at)::string
    from {{ ref('int_ga4__device_days') }}
    group by export_day
    {%- for model in tables %}
    union all
    select 'table:{{ model }}', count(*)::string || '/' || coalesce(sum(hash(t)), 0)::string
    from {{ ref(model) }} as t
    {%- endfor %}
{%- endmacro -%}

{#- The GA4 export days built last time (marks `day:`) that were replaced or lost rows since:
    a new day only adds. -#}
{%- macro changed_export_days(marks, now_marks) -%}
    select cast(substr(input, 5) as date) as export_day
    from (
        select input, mark from {{ marks }} where input like 'day:%'
        except
        select input, mark from {{ now_marks }}
    ) as changed
{%- endmacro -%}

{#- Whether a changed export day (`changed_days`, cdp.changed_export_days) is older than the
    days whose devices were kept (`recent_devices`, cdp.recent_devices): what it held before
    is then unknown, and only recomputing everything is exact. -#}
{%- macro older_export_day_changed(changed_days, recent_devices) -%}
    exists (
        select 1 from {{ changed_days }}
        where export_day < (select min(export_day) from {{ recent_devices }})
            or not exists (select 1 from {{ recent_devices }})
    )
{%- endmacro -%}

{#- Whether email events were replaced or deleted since the last build: fewer of the rows
    loaded until then are left than it counted (its `marks`, cdp.input_marks). -#}
{%- macro email_events_lost(marks) -%}
    (select max(mark) from {{ marks }} where input = 'rows:stg_shop__email_events')
    <> (
        select count(*)::string from {{ ref('stg_shop__email_events') }}
        where _loaded_at <= (
            select max(mark)::timestamptz from {{ marks }}
            where input = 'loaded:stg_shop__email_events'
        )
    )
{%- endmacro -%}

{#- How many export days before the newest the export may still replace: an intraday shard
    is rewritten through its day, the daily shard replaces it the next day, and late hits
    update a daily table for up to 72 hours. A model keeps the devices of these days
    (recent_devices) to know what a replaced one held before; an older day replaced costs
    everything. -#}
{%- macro replaceable_export_days() -%}3{%- endmacro -%}

{%- macro recent_devices() -%}
    select distinct export_day, device_id
    from {{ ref('int_ga4__device_days') }}
    where export_day >= (select max(export_day) from {{ ref('int_ga4__device_days') }})
        - {{ cdp.replaceable_export_days() }}
{%- endmacro -%}
