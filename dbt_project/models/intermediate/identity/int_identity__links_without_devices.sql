{#- The identity graph without device evidence and without blocked identifiers, to judge which
    devices are shared: each identifier of a record linked to the record's smallest node. -#}

{{ config(materialized='view') }}

with

members as (

    select * from {{ ref('int_identity__record_identifiers') }}
    where
        identifier_type <> 'device'
        and node not in (select node from {{ ref('int_identity__blocked_identifiers') }})

),

anchors as (

    select
        record,
        min(node) as anchor
    from members
    group by record

)

select
    members.node as a,
    anchors.anchor as b
from members
inner join anchors on members.record = anchors.record
