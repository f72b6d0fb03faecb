{#- Which identifiers (nodes) each source record holds: the evidence that links them. One row
    per observation: observations are unique per record and identifier (their test runs
    first) and a node stands for one identifier, so there is nothing to deduplicate.
    Kept from build to build: a build recomputes only the records of the observations
    replaced since it last ran (int_identity__observations__changes). -#}
{{
    config(
        materialized=cdp.incremental_on_duckdb(),
        incremental_strategy='append',
        pre_hook="{{ cdp.forget_changed_observations('records') if is_incremental() }}",
        post_hook="{{ cdp.forget_applied_observation_changes() }}"
    )
}}

select
    observations.source || ':' || observations.record_id as record,
    nodes.node,
    nodes.identifier_type
from {{ ref('int_identity__observations') }} as observations
inner join {{ ref('int_identity__nodes') }} as nodes
    on
        observations.identifier_type = nodes.identifier_type
        and observations.identifier_value = nodes.identifier_value
where {{ cdp.changed_observations_only(['source', 'record_id']) }}
