{#- Which earlier customer_keys each person inherits. Each key of the previous run goes to
    the person holding most of its identifiers (so a split leaves the old key with the larger
    part); of the keys a person inherits, the oldest survives and the others retire
    (int_identity__customer_key_merges). When only the persons of the listed nodes are
    recomputed (macros/identity/restitch.sql), only their keys are here. -#}

{%- set listed_only = cdp.restitch_listed_only() %}


with

previous_keys as (

    {{ cdp.previous_state('int_identity__identifier_keys', {
        'identifier_type': dbt.type_string(), 'identifier_value': dbt.type_string(),
        'customer_key': dbt.type_string()}) }}
    {%- if listed_only %}
    where node in ({{ cdp.pending_nodes() }})
    {%- endif %}

),

persons as (

    {{ cdp.restitched_persons(listed_only) }}

),

registry as (

    {{ cdp.previous_state('int_identity__customer_keys', {
        'customer_key': dbt.type_string(), 'created_at': dbt.type_timestamp()}) }}

),

votes as (

    select
        previous_keys.customer_key,
        persons.label,
        count(*) as identifiers
    from previous_keys
    inner join persons
        on
            previous_keys.identifier_type = persons.identifier_type
            and previous_keys.identifier_value = persons.identifier_value
    group by previous_keys.customer_key, persons.label

),

heirs as (

    select
        votes.customer_key,
        votes.label,
        registry.created_at,
        row_number() over (
            partition by votes.customer_key order by votes.identifiers desc, votes.label
        ) as heir_rank
    from votes
    inner join registry on votes.customer_key = registry.customer_key

),

inherited as (

    select
        customer_key,
        label,
        created_at,
        row_number() over (partition by label order by created_at, customer_key) as key_rank
    from heirs
    where heir_rank = 1

)

select
    label,
    customer_key,
    created_at,
    key_rank = 1 as survives
from inherited
