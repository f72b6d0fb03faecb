{#- Exchange rates typed or pasted into the sheet: one unit of `currency` is worth `rate`
    units of the reporting currency on `rate_date`. Values arrive as displayed, so a decimal
    comma is read as a point and dates take the sheet's usual forms. -#}

with

source as (

    select * from {{ source('raw_sheets', 'fx_rates') }}

),

renamed as (

    select
        _row_number as rate_row,
        {{ parse_sheet_timestamp('rate_date') }}::date as rate_date,
        upper({{ clean_text('currency') }}) as currency,
        try_cast(replace({{ clean_text('rate') }}, ',', '.') as double) as rate

    from source

)

select * from renamed
