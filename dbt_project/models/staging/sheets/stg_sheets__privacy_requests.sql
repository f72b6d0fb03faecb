with

source as (

    select * from {{ source('raw_sheets', 'privacy_requests') }}

),

renamed as (

    select
        _row_number as request_row,
        {{ parse_sheet_timestamp('requested_at') }} as requested_at,
        {{ normalize_email('email') }} as email,
        {{ normalize_phone('phone') }} as phone,
        lower({{ clean_text('request_type') }}) as request_type

    from source

)

select * from renamed
