with

source as (

    select * from {{ source('raw_sheets', 'b2b_accounts') }}

),

renamed as (

    select
        {{ clean_text('company_name') }} as company_name,
        lower(regexp_replace({{ clean_text('email_domain') }}, '^@+', '')) as email_domain,
        lower({{ clean_text('industry') }}) as industry,
        {{ clean_text('company_size') }} as company_size,
        {{ clean_text('account_manager') }} as account_manager

    from source

)

select * from renamed
