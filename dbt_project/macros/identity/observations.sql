{#- One row per (record, identifier) from a relation with one column per identifier type
    (`kinds`): source, record_id, identifier_type, identifier_value, first_seen_at,
    last_seen_at; NULL identifiers are left out. -#}
{% macro identifiers_by_type(records, kinds) %}
  {{ return(adapter.dispatch('identifiers_by_type', 'cdp')(records, kinds)) }}
{% endmacro %}

{#- one pass over the records -#}
{% macro duckdb__identifiers_by_type(records, kinds) %}
    select source, record_id, identifier_type, identifier_value, first_seen_at, last_seen_at
    from (
        unpivot {{ records }}
        on {{ kinds | join(', ') }}
        into name identifier_type value identifier_value
    ) as unpivoted
    where identifier_value is not null
{% endmacro %}

{% macro default__identifiers_by_type(records, kinds) %}
    {%- for kind in kinds %}
    {{ 'union all' if not loop.first }}
    select
        source,
        record_id,
        '{{ kind }}' as identifier_type,
        {{ kind }} as identifier_value,
        first_seen_at,
        last_seen_at
    from {{ records }}
    where {{ kind }} is not null
    {%- endfor %}
{% endmacro %}

{#- An identifier's node number: the first 60 bits of md5("type:value"), the same on every
    engine (a positive bigint). -#}
{% macro identifier_number(kind, value) %}
  {{ return(adapter.dispatch('identifier_number', 'cdp')(kind, value)) }}
{% endmacro %}

{% macro duckdb__identifier_number(kind, value) -%}
    cast('0x' || substr(md5({{ kind }} || ':' || {{ value }}), 1, 15) as bigint)
{%- endmacro %}

{% macro default__identifier_number(kind, value) -%}
    cast(conv(substr(md5(concat({{ kind }}, ':', {{ value }})), 1, 15), 16, 10) as bigint)
{%- endmacro %}

{#- What int_identity__observations' inputs look like now (cdp.input_marks), and which
    identifiers were erased. -#}
{% macro observations_marks() %}
    {{ cdp.input_marks(
        loaded=['stg_shop__customers', 'stg_shop__orders', 'stg_shop__email_events',
                'int_ga4__device_days'],
        rows=['stg_shop__email_events'],
        tables=['stg_sheets__survey_responses']) }}
    union all
    select 'erased', count(*)::string || '/' || coalesce(sum(hash(identifier_hash)), 0)::string
    from {{ source('privacy', 'erased_identifiers') }}
{% endmacro %}

{#- What an incremental build of int_identity__observations recomputes, decided before it runs
    from the inputs' marks of the last build and of now: `everything` (no state kept, a
    changed project, setting or erasure, or a changed export day older than the recent ones),
    `surveys` (the tab changed), `emails` (an email event replaced or deleted, so fewer rows
    loaded until the last build are left) and `changed_days` (the recent export days
    replaced or short of rows). Decided here rather than in the model's SQL: a filter such as
    `device_id in (...) or everything` makes the engine scan and test every row. -#}
{% macro observations_redo() %}
  {%- set all = {'everything': true, 'surveys': true, 'emails': true, 'changed_days': []} -%}
  {%- if not execute or not cdp.state_exists(['marks', 'recent_devices']) -%}
    {{ return(all) }}
  {%- endif -%}
  {%- set query -%}
    with
    marks as (select input, mark from {{ cdp.state_relation('marks') }}),
    now_marks as ({{ cdp.observations_marks() }}),
    changed_days as ({{ cdp.changed_export_days('marks', 'now_marks') }})
    select
        not exists (select 1 from marks)
        or exists (
            select input, mark from marks where input in ('definition', 'erased')
            except
            select input, mark from now_marks
        )
        or {{ cdp.older_export_day_changed('changed_days', cdp.state_relation('recent_devices')) }},
        exists (
            select input, mark from marks where input like 'table:%'
            except
            select input, mark from now_marks
        ),
        coalesce({{ cdp.email_events_lost('marks') }}, true),
        coalesce((select string_agg(export_day::string, ',') from changed_days), '')
  {%- endset -%}
  {%- set row = run_query(query).rows[0] -%}
  {{ return({'everything': row[0], 'surveys': row[1], 'emails': row[2],
             'changed_days': (row[3] | string).split(',') if row[3] else []}) }}
{% endmacro %}

{#- The rows int_identity__observations replaced since the models reading it last caught up:
    every row taken out and every row put in (a record's rows before and after), with the
    build (`_build`) that replaced them. A row without a source says: everything may have
    changed (a build from scratch). The models that read it (cdp.observation_change_readers)
    recompute what is listed (everything without the table); a build's rows go once every
    reader has applied them (cdp.observation_changes_applied). -#}
{% macro observation_changes() %}
  {%- set observations = ref('int_identity__observations') -%}
  {{ return(api.Relation.create(database=observations.database, schema=observations.schema,
      identifier=observations.identifier ~ '__changes', type='table')) }}
{% endmacro %}

{#- Incremental strategy `replace_records` (int_identity__observations): every record
    (`unique_key`) the model returns is replaced whole and its old and new rows are listed in
    `__changes`. A returned row whose identifier_type is null only names a record to take
    out; one whose source is null says the model returned everything: then every row is
    replaced, and `__changes` says so with a row of its own. Which of the two it is is asked
    first: a delete `where everything or same record` makes the engine test every row. -#}
{% macro get_incremental_replace_records_sql(arg_dict) %}
  {%- set target = arg_dict['target_relation'] -%}
  {%- set source = arg_dict['temp_relation'] -%}
  {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
  {%- set changes = api.Relation.create(database=target.database, schema=target.schema,
        identifier=target.identifier ~ '__changes', type='table') -%}
  {%- set keys = arg_dict['unique_key'] | join(', ') -%}
  {%- set everything = run_query('select count(*) from ' ~ source ~ ' where source is null')
        .columns[0].values()[0] | int > 0 -%}
    create table if not exists {{ changes }} as
    select {{ columns }}, '' as _build from {{ target }} where 1 = 0;
  {%- if everything %}
    insert into {{ changes }} ({{ columns }}, _build)
    select {{ columns }}, '{{ invocation_id }}' from {{ source }} where source is null;
    delete from {{ target }};
  {%- else %}
    insert into {{ changes }}
    select {{ columns }}, '{{ invocation_id }}' from {{ target }}
    where ({{ keys }}) in (select {{ keys }} from {{ source }});
    delete from {{ target }} where ({{ keys }}) in (select {{ keys }} from {{ source }});
  {%- endif %}
    {{ cdp.observations_written_once(source) }};
    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ source }} where identifier_type is not null
  {%- if not everything %};
    insert into {{ changes }}
    select {{ columns }}, '{{ invocation_id }}' from {{ source }}
    where identifier_type is not null
  {%- endif %}
{% endmacro %}

{#- Post-hook of int_identity__observations: what the next build compares with
    (cdp.state_relation): `marks`, and `recent_devices`, the devices of the export days the
    export may still replace. After a build from scratch, `__changes` says everything, and
    what it wrote is checked here (a build of some records checks them as it writes them). -#}
{% macro keep_observations_state() %}
  {%- if target.type == 'duckdb' -%}
    {%- set changes = cdp.state_relation('changes') -%}
    {%- if should_full_refresh() or not cdp.relation_exists(changes) %}
    {{ cdp.observations_written_once(this) }};
    create or replace table {{ changes }} as
    select *, '' as _build from {{ this }} where 1 = 0;
    insert into {{ changes }} (_build) values ('{{ invocation_id }}');
    {%- endif %}
    create or replace table {{ cdp.state_relation('recent_devices') }} as
    {{ cdp.recent_devices() }};
    create or replace table {{ cdp.state_relation('marks') }} as
    {{ cdp.observations_marks() }}
  {%- endif -%}
{% endmacro %}

{#- Fails the build, before it commits, when `rows` (the rows it writes) hold an identifier
    twice in one record. Every build that writes the observations checks what it writes, with
    or without its tests, so the model's test need only look at the records replaced. -#}
{% macro observations_written_once(rows) %}
    select error('int_identity__observations: ' || count(*) || ' identifier(s) twice in one '
        || 'record, e.g. ' || any_value(source || ':' || record_id || ' ' || identifier_type))
    from (
        select source, record_id, identifier_type, identifier_value
        from {{ rows }}
        where identifier_type is not null
        group by source, record_id, identifier_type, identifier_value
        having count(*) > 1
    ) as twice
    having count(*) > 0
{% endmacro %}

{#- Whether `__changes` lists what to recompute: false without the table (observations
    written by other means) or when it holds a build from scratch; then everything is. Asked
    of the warehouse, not dbt's cache: the table may have been made by this same build. -#}
{% macro observation_changes_listed() %}
  {%- if not execute or target.type != 'duckdb' -%}{{ return(false) }}{%- endif -%}
  {%- set changes = cdp.observation_changes() -%}
  {%- if not cdp.relation_exists(changes) -%}{{ return(false) }}{%- endif -%}
  {%- set everything = run_query('select count(*) from ' ~ changes ~ ' where source is null')
        .columns[0].values()[0] -%}
  {{ return(everything | int == 0) }}
{% endmacro %}

{#- Filter of a test of int_identity__observations: the rows of the records `__changes`
    lists, every row when it does not list them. -#}
{% macro replaced_records_only() %}
  {{- cdp.listed_observations_only(['source', 'record_id'], alias=none) -}}
{% endmacro %}

{#- Filter of a model reading int_identity__observations: on an incremental build, only the
    rows whose `keys` (columns of the observations, as `alias`.column) are listed in
    `__changes`; every row when that does not list them. -#}
{% macro changed_observations_only(keys, alias='observations') %}
  {{- cdp.listed_observations_only(keys, alias) if is_incremental() else 'true' -}}
{% endmacro %}

{#- The rows whose `keys` (as `alias`.column, bare without an alias) `__changes` lists;
    every row when it does not list them. -#}
{% macro listed_observations_only(keys, alias) %}
  {%- if cdp.observation_changes_listed() -%}
    {%- set prefix = alias ~ '.' if alias else '' -%}
    ({{ prefix }}{{ keys | join(', ' ~ prefix) }}) in (
        select {{ keys | join(', ') }} from {{ cdp.observation_changes() }}
    )
  {%- else -%}
    true
  {%- endif -%}
{% endmacro %}

{#- Pre-hook of a model that recomputes what `__changes` lists: the rows of the listed
    `identifiers` (int_identity__nodes), `records` (int_identity__record_identifiers) or
    `nodes` (int_identity__blocked_identifiers) go, every row when it does not list them. -#}
{% macro forget_changed_observations(rows) %}
  {%- set key, keys = {
        'identifiers': ('identifier_type, identifier_value', 'identifier_type, identifier_value'),
        'records': ('record', "source || ':' || record_id"),
        'nodes': ('node', cdp.identifier_number('identifier_type', 'identifier_value'))}[rows] -%}
    delete from {{ this }}
  {%- if cdp.observation_changes_listed() %}
    where ({{ key }}) in (select {{ keys }} from {{ cdp.observation_changes() }})
  {%- endif -%}
{% endmacro %}

{#- The models that recompute only what `__changes` lists. -#}
{% macro observation_change_readers() %}
  {{ return(['int_identity__nodes', 'int_identity__record_identifiers',
             'int_identity__blocked_identifiers']) }}
{% endmacro %}

{#- Post-hook of each reader of `__changes`: the builds it has applied (`<model>__applied`),
    which for a reader of other readers' tables (`after`) are only those they had applied
    when it read them; the builds every reader has applied are done with and go. A build
    that stops between two readers, or a reader built by hand before those it reads have
    caught up, therefore loses nothing: what it missed stays listed for its next build. -#}
{% macro observation_changes_applied(after=[]) %}
  {%- set changes = cdp.observation_changes() -%}
  {%- if target.type == 'duckdb' and cdp.relation_exists(changes) -%}
    {%- set applied, missing = {}, [] -%}
    {%- for reader in cdp.observation_change_readers() -%}
      {%- set relation = api.Relation.create(database=this.database, schema=this.schema,
            identifier=reader ~ '__applied', type='table') -%}
      {%- do applied.update({reader: relation}) -%}
      {%- if reader != this.identifier and not cdp.relation_exists(relation) -%}
        {%- do missing.append(reader) -%}
      {%- endif -%}
    {%- endfor %}
    create or replace table {{ applied[this.identifier] }} as
    select distinct _build from {{ changes }}
    {%- for reader in after %}
    {{ 'where' if loop.first else 'and' }}
    {%- if reader in missing %} false
    {%- else %} _build in (select _build from {{ applied[reader] }})
    {%- endif %}
    {%- endfor %}
    {%- if not missing %};
    delete from {{ changes }} where
    {%- for relation in applied.values() %}
        _build in (select _build from {{ relation }}){{ ' and' if not loop.last }}
    {%- endfor %}
    {%- endif %}
  {%- endif -%}
{% endmacro %}
