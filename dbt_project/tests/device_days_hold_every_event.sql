{#- The per-day aggregate kept from run to run holds every staged event, no more: export
    days on which it and staging disagree. -#}

with

staged as (

    select export_day, count(*) as events from {{ ref('stg_ga4__events') }}
    where device_id is not null
    group by export_day

),

kept as (

    select export_day, sum(events) as events from {{ ref('int_ga4__device_days') }}
    group by export_day

)

select
    coalesce(staged.export_day, kept.export_day) as export_day,
    staged.events as staged_events,
    kept.events as kept_events
from staged
full outer join kept on staged.export_day = kept.export_day
where staged.events is distinct from kept.events
