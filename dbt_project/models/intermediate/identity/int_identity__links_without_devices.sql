{#- The identity graph without device evidence and without blocked identifiers, to judge which
    devices are shared: each identifier of a record linked to the record's smallest node. -#}

{{ config(materialized='view') }}

with

members as (

    select * from {{ ref('int_identity__record_identifiers') }}
    where
        identifier_type <> 'device'
        and node not in (select node from {{ ref('int_identity__blocked_identifiers') }})

)

{{ cdp.star_links('members') }}
