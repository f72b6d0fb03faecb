{#- Keys retired because their persons merged, with the surviving key: appended run after
    run and kept through full refreshes, so a key stored anywhere can always be followed. -#}

{{ config(materialized='incremental', incremental_strategy='append', full_refresh=false) }}

with inheritance as (select * from {{ ref('int_identity__key_inheritance') }})

select
    retired.customer_key as retired_key,
    surviving.customer_key as surviving_key,
    {{ dbt.current_timestamp() }} as merged_at,
    {{ cdp.run_id() }} as run_id
from inheritance as retired
inner join inheritance as surviving
    on retired.label = surviving.label and surviving.survives
where not retired.survives
