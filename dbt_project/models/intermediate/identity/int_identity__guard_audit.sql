{#- Every identifier that merge protection keeps from linking anybody, with its rule and why:
    blocklisted values, emails and phones over their partner limits, and devices on which
    customers of more than `device_persons` persons (judged without devices) logged in. -#}

with

record_identifiers as (select * from {{ ref('int_identity__record_identifiers') }}),

blocked as (select * from {{ ref('int_identity__blocked_identifiers') }}),

shared_devices as (

    select
        device.node,
        'shared_device' as rule,
        'customers of ' || count(distinct persons.label) || ' persons logged in on this device'
            as reason
    from record_identifiers as device
    inner join record_identifiers as customer
        on device.record = customer.record and customer.identifier_type = 'customer_id'
    inner join {{ ref('int_identity__components_without_devices') }} as persons
        on customer.node = persons.node
    where
        device.identifier_type = 'device'
        and device.node not in (select node from blocked)
    group by device.node
    having count(distinct persons.label) > {{ var('identity')['device_persons'] | int }}

),

guarded as (

    select * from blocked
    union all
    select * from shared_devices

)

select
    nodes.identifier_type,
    nodes.identifier_value,
    guarded.rule,
    guarded.reason,
    nodes.first_seen_at,
    nodes.last_seen_at,
    nodes.node
from guarded
inner join {{ ref('int_identity__nodes') }} as nodes on guarded.node = nodes.node
