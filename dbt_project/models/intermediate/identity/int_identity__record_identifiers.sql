{#- Which identifiers (nodes) each source record holds: the evidence that links them. One row
    per observation: observations are unique per record and identifier (their test runs
    first) and a node stands for one identifier, so there is nothing to deduplicate. -#}

select
    observations.source || ':' || observations.record_id as record,
    nodes.node,
    nodes.identifier_type
from {{ ref('int_identity__observations') }} as observations
inner join {{ ref('int_identity__nodes') }} as nodes
    on
        observations.identifier_type = nodes.identifier_type
        and observations.identifier_value = nodes.identifier_value
