{#- No identifier twice in one record of int_identity__observations. Each build checks the
    rows it writes before it commits (cdp.observations_written_once), so this test looks at
    the records the builds since the readers last caught up replaced (`__changes`), and at
    every record when that does not list them. -#}

select source, record_id, identifier_type, identifier_value, count(*) as n
from {{ ref('int_identity__observations') }}
where {{ cdp.replaced_records_only() }}
group by source, record_id, identifier_type, identifier_value
having count(*) > 1
