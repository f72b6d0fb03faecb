{#- Which identifiers (nodes) each source record holds: the evidence that links them. One row
    per observation: observations are unique per record and identifier (their test runs
    first) and a node stands for one identifier, so there is nothing to deduplicate. The node
    is computed from the identifier as int_identity__nodes does, not looked up there: a build
    that recomputes a few records then reads no table of every identifier. Every row carries
    its record's smallest node (`anchor`) and smallest node that is not a device
    (`anchor_without_devices`), the centres of the record's links (cdp.star_links), so that
    the links need no grouping of every record each build.
    Kept from build to build: a build recomputes only the records of the observations
    replaced since it last ran (int_identity__observations__changes). -#}
{{
    config(
        materialized=cdp.incremental_on_duckdb(),
        incremental_strategy='append',
        on_schema_change='sync_all_columns',
        pre_hook="{{ cdp.forget_changed_observations('records') if is_incremental() }}",
        post_hook="{{ cdp.observation_changes_applied() }}"
    )
}}

with

numbered as (

    select
        observations.source || ':' || observations.record_id as record,
        {{ cdp.identifier_number('observations.identifier_type', 'observations.identifier_value') }}
            as node,
        observations.identifier_type
    from {{ ref('int_identity__observations') }} as observations
    where {{ cdp.changed_observations_only(['source', 'record_id']) }}

)

select
    record,
    node,
    identifier_type,
    min(node) over (partition by record) as anchor,
    min(case when identifier_type <> 'device' then node end) over (partition by record)
        as anchor_without_devices
from numbered
