{#- Which identifiers (nodes) each source record holds: the evidence that links them. One row
    per observation: observations are unique per record and identifier (their test runs
    first) and a node stands for one identifier, so there is nothing to deduplicate. The node
    is computed from the identifier as int_identity__nodes does, not looked up there: a build
    that recomputes a few records then reads no table of every identifier.
    Kept from build to build: a build recomputes only the records of the observations
    replaced since it last ran (int_identity__observations__changes). -#}
{{
    config(
        materialized=cdp.incremental_on_duckdb(),
        incremental_strategy='append',
        pre_hook="{{ cdp.forget_changed_observations('records') if is_incremental() }}",
        post_hook="{{ cdp.observation_changes_applied() }}"
    )
}}

select
    observations.source || ':' || observations.record_id as record,
    {{ cdp.identifier_number('observations.identifier_type', 'observations.identifier_value') }}
        as node,
    observations.identifier_type
from {{ ref('int_identity__observations') }} as observations
where {{ cdp.changed_observations_only(['source', 'record_id']) }}
