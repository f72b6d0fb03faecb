{#- Persons as they would be without any device: the yardstick for shared devices. -#}

{{ config(materialized='connected_components', max_rounds=var('identity')['max_rounds']) }}

select a, b from {{ ref('int_identity__links_without_devices') }}
