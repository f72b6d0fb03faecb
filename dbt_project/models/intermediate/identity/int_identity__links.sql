{#- The identity graph: the identifiers of one record are linked, each to the record's
    smallest node (a star per record), once merge protection has removed its identifiers. -#}

{{ config(materialized='view') }}

{{ cdp.star_links(
    ref('int_identity__record_identifiers'),
    anchor='anchor',
    may_link='true',
    removed=ref('int_identity__guard_audit')) }}
