with

source as (

    select * from {{ source('raw_shop', 'products') }}

),

renamed as (

    select
        product_id,
        sku,
        {{ clean_text('name') }} as product_name,
        lower({{ clean_text('category') }}) as category,
        price,
        updated_at

    from source

)

select * from renamed
