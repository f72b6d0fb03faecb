with

source as (

    select * from {{ source('raw_shop', 'order_items') }}

),

renamed as (

    select
        order_id,
        line_no,
        product_id,
        quantity,
        unit_price,
        quantity * unit_price as line_amount

    from source

)

select * from renamed
