{#- Every distinct identifier: the nodes of the identity graph. A node's number is derived from
    the identifier alone, so it is the same in every run and every warehouse; that is what lets
    the connected components be kept from run to run and recomputed only where links changed.
    Two identifiers meeting on one number fail the build before it commits (cdp.written_once,
    over the nodes of the identifiers it wrote: both rows of a collision share the number).
    Kept from build to build: a build recomputes only the identifiers of the observations
    replaced since it last ran (int_identity__observations__changes), and lists them for
    the persons to recompute (macros/identity/restitch.sql). -#}
{{
    config(
        materialized=cdp.incremental_on_duckdb(),
        incremental_strategy='append',
        pre_hook="{{ cdp.forget_changed_observations('identifiers') if is_incremental() }}",
        post_hook=[
            "{{ cdp.written_once(['node'], 'node in (' ~ cdp.changed_observation_nodes() ~ ')'
                if is_incremental() and cdp.observation_changes_listed() else none) }}",
            "{{ cdp.list_pending_persons(cdp.changed_observation_nodes()
                if is_incremental() and cdp.observation_changes_listed() else none) }}",
            "{{ cdp.observation_changes_applied() }}"
        ]
    )
}}

select
    {{ cdp.identifier_number('identifier_type', 'identifier_value') }} as node,
    identifier_type,
    identifier_value,
    min(first_seen_at) as first_seen_at,
    max(last_seen_at) as last_seen_at
from {{ ref('int_identity__observations') }} as observations
where {{ cdp.changed_observations_only(['identifier_type', 'identifier_value']) }}
group by identifier_type, identifier_value
