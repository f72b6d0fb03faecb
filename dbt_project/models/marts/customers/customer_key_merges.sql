{#- Published history of retired keys: one row per retired key. -#}
select retired_key, surviving_key, merged_at
from {{ ref('int_identity__customer_key_merges') }}
qualify row_number() over (partition by retired_key order by merged_at desc) = 1
