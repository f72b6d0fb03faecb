{#- What each email did with each campaign and variant it has events of: whether it was sent
    it, and bounced, opened, clicked or unsubscribed, and when it was sent. Events without a
    campaign or a valid email address do not count. Kept from build to build
    (macros/campaigns.sql): a build recomputes only the (campaign, variant, email) groups of the
    email events loaded since the last one, so a night's cost follows its new events, not
    every email ever sent. -#}
{{
    config(
        materialized=cdp.incremental_on_duckdb(),
        incremental_strategy='append',
        pre_hook="{{ cdp.forget_changed_recipients() if is_incremental() }}",
        post_hook="{{ cdp.keep_counted_email_events() }}"
    )
}}

with

events as (

    select * from {{ ref('stg_shop__email_events') }}
    where campaign_id is not null and email is not null

),

counted as (

    {%- if cdp.recipients_counted_since() %}
    select events.*
    from events
    semi join ({{ cdp.changed_recipients() }}) as changed
        on
            events.campaign_id = changed.campaign_id
            and events.variant is not distinct from changed.variant
            and events.email = changed.email
    {%- else %}
    select * from events
    {%- endif %}

)

select
    campaign_id,
    variant,
    email,
    bool_or(event_type = 'sent') as sent,
    min(occurred_at) filter (where event_type = 'sent') as first_sent_at,
    max(occurred_at) filter (where event_type = 'sent') as last_sent_at,
    bool_or(event_type = 'bounce') as bounced,
    bool_or(event_type in ('open', 'click')) as opened,
    bool_or(event_type = 'click') as clicked,
    bool_or(event_type = 'unsubscribe') as unsubscribed
from counted
group by campaign_id, variant, email
