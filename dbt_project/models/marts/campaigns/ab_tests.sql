{#- A/B tests of campaign variants per campaign and metric, typed for the contract. The
    statistics come from statsmodels in the Python model int_campaigns__ab_tests. -#}

with

tests as (

    select * from {{ ref('int_campaigns__ab_tests') }}

)

select
    campaign_id::string as campaign_id,
    metric::string as metric,
    variant_a::string as variant_a,
    variant_b::string as variant_b,
    rate_a::double as rate_a,
    rate_b::double as rate_b,
    recipients_a::bigint as recipients_a,
    recipients_b::bigint as recipients_b,
    lift::double as lift,
    p_value::double as p_value,
    ci_low::double as ci_low,
    ci_high::double as ci_high,
    winner::string as winner
from tests
