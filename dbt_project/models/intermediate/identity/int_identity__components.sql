{#- One component per person: label = the smallest node of the person's identifiers. -#}

{{
    config(
        materialized='connected_components',
        max_rounds=var('identity')['max_rounds'],
        lists_pending_persons=true
    )
}}

select a, b from {{ ref('int_identity__links') }}
