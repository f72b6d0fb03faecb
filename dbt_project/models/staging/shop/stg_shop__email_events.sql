with

source as (

    select * from {{ source('raw_shop', 'email_events') }}

),

renamed as (

    select
        event_id as email_event_id,
        {{ normalize_email('email') }} as email,
        {{ email_problem('email') }} as email_problem,
        campaign_id,
        variant,
        lower(event_type) as event_type,
        occurred_at

    from source

)

select * from renamed
