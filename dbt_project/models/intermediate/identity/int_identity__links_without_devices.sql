{#- The identity graph without device evidence and without blocked identifiers, to judge which
    devices are shared: each identifier of a record linked to the record's smallest node. -#}

{{ config(materialized='view') }}

{{ cdp.star_links(
    ref('int_identity__record_identifiers'),
    anchor='anchor_without_devices',
    may_link="identifier_type <> 'device'",
    removed=ref('int_identity__blocked_identifiers')) }}
