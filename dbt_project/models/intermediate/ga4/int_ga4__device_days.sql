{#- GA4 events summed up per device and export day: the aggregate that stitching and the
    profiles read instead of every event. Kept run after run and rebuilt per export day, like
    the events themselves: a night reads only the days loaded since it last ran, and a day
    exported again replaces its rows whole, as does a day that lost events to an erasure.
    Sessions are kept as the list of their ids: a session may run past midnight and must be
    counted once. -#}
{{
    config(
        materialized=cdp.incremental_on_duckdb(),
        unique_key='export_day',
        incremental_strategy='delete+insert',
        post_hook="{{ cdp.forget_lost_export_days() if is_incremental() }}"
    )
}}

with

events as (

    select * from {{ ref('stg_ga4__events') }}
    where
        device_id is not null
        {%- if is_incremental() %}
        and export_day in (
            select distinct export_day from {{ ref('stg_ga4__events') }}
            {{ loaded_since_last_build() }}
            union
            select export_day from (
                select export_day, count(*) as events from {{ ref('stg_ga4__events') }}
                where device_id is not null
                group by export_day
            ) as staged
            where not exists (
                select 1 from (
                    select export_day, sum(events) as events from {{ this }} group by export_day
                ) as kept
                where kept.export_day = staged.export_day and kept.events = staged.events
            )
        )
        {%- endif %}

)

select
    export_day,
    device_id,
    user_id,
    device_category,
    geo_city,
    count(*) as events,
    count(*) filter (where event_name = 'page_view') as page_views,
    {{ cdp.distinct_list('ga_session_id') }} as sessions,
    min(event_at) as first_event_at,
    max(event_at) as last_event_at,
    min_by(
        {{ cdp.make_struct([('source', 'first_touch_source'), ('medium', 'first_touch_medium'),
                         ('at', 'first_touch_at'), ('event_at', 'event_at')]) }},
        {{ cdp.make_struct([('first_touch_at', 'first_touch_at'), ('event_at', 'event_at'),
                         ('source', 'first_touch_source'), ('medium', 'first_touch_medium')]) }}
    ) filter (where first_touch_at is not null) as first_touch,
    max(_loaded_at) as _loaded_at
from events
group by export_day, device_id, user_id, device_category, geo_city
