{#- Published copy of the identity map: one row per identifier. A view on DuckDB: the
    publication writes the copy, and a table here would write every identifier a second time
    each build for the tests and the publication to read once. A table on Spark, whose built
    tables are what the warehouse file mirrors (orchestration/spark.py). -#}

{{ config(materialized='view' if target.type == 'duckdb' else 'table') }}

select identifier_type, identifier_value, customer_key, first_seen_at, last_seen_at
from {{ ref('int_identity__customer_identities') }}
