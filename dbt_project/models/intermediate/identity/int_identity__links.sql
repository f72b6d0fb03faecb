{#- The identity graph: the identifiers of one record are linked, each to the record's
    smallest node (a star per record), once merge protection has removed its identifiers. -#}

{{ config(materialized='view') }}

with

members as (

    select * from {{ ref('int_identity__record_identifiers') }}
    where node not in (select node from {{ ref('int_identity__guard_audit') }})

)

{{ cdp.star_links('members') }}
