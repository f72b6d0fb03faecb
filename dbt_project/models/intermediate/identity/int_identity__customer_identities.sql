{#- One row per identifier of a person with the person's stable customer_key; order ids,
    which only tie orders to persons, are left out. A view on DuckDB: a copy would cost a
    write of every identifier each build, for models that read it once. A table on Spark,
    whose built tables are what the warehouse file mirrors (orchestration/spark.py). -#}

{{ config(materialized='view' if target.type == 'duckdb' else 'table') }}

select
    identifier_type,
    identifier_value,
    customer_key,
    first_seen_at,
    last_seen_at
from {{ ref('int_identity__identifier_keys') }}
where identifier_type in ('customer_id', 'email', 'phone', 'device')
