{#- Every customer_key ever issued, with when and by which run: kept through full refreshes
    (a key once issued is never issued again to somebody else). -#}

{{ config(materialized='incremental', incremental_strategy='append', full_refresh=false) }}

select distinct
    customer_key,
    {{ dbt.current_timestamp() }} as created_at,
    {{ cdp.run_id() }} as created_run_id
from {{ ref('int_identity__identifier_keys') }}
where is_new_key
