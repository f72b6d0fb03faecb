{#- Every linked identifier (order ids included) with its person's stable customer_key: the
    key it inherits (int_identity__key_inheritance), else a new one derived from the person's
    earliest identifier, which a warehouse rebuilt from scratch finds again. A derived key
    that was ever used before (after a split) is salted with the component's label. This
    table is the next run's previous state. Kept from build to build: a build recomputes only
    the persons of the nodes listed since (macros/identity/restitch.sql), and lists the
    identifiers whose rows it replaced for int_customers__touched_persons. -#}
{{
    config(
        materialized=cdp.incremental_on_duckdb(),
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ cdp.forget_listed_identifier_keys() }}",
        post_hook=[
            "{{ cdp.list_replaced_identifier_keys() }}",
            "{{ cdp.written_once(['identifier_type', 'identifier_value'],
                cdp.identifier_keys_written() if cdp.restitch_listed_only() else none) }}",
            "{{ cdp.pending_persons_applied() }}"
        ]
    )
}}

{%- set listed_only = cdp.restitch_listed_only() %}

with

persons as (

    {{ cdp.restitched_persons(listed_only) }}

),

survivors as (

    select label, customer_key from {{ ref('int_identity__key_inheritance') }}
    where survives

),

registry as (

    {{ cdp.previous_state('int_identity__customer_keys', {'customer_key': dbt.type_string()}) }}

),

earliest as (

    select
        label,
        identifier_type || ':' || identifier_value as first_identifier,
        row_number() over (
            partition by label
            order by first_seen_at nulls last, identifier_type, identifier_value
        ) as position
    from persons
    where
        identifier_type <> 'order_id'
        and label not in (select label from survivors)

),

derived as (

    select
        label,
        first_identifier,
        'cus_' || substr(md5(first_identifier), 1, 16) as customer_key
    from earliest
    where position = 1

),

fresh as (

    select
        derived.label,
        case
            when registry.customer_key is null then derived.customer_key
            else
                'cus_' || substr(md5(
                    derived.first_identifier || '#'
                    || cast(derived.label as {{ dbt.type_string() }})
                ), 1, 16)
        end as customer_key
    from derived
    left join registry on derived.customer_key = registry.customer_key

),

label_keys as (

    select label, customer_key, false as is_new_key from survivors
    union all
    select label, customer_key, true as is_new_key from fresh

)

select
    persons.node,
    persons.identifier_type,
    persons.identifier_value,
    label_keys.customer_key,
    persons.first_seen_at,
    persons.last_seen_at,
    label_keys.is_new_key
from persons
inner join label_keys on persons.label = label_keys.label
