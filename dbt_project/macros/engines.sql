{#- SQL that DuckDB and Spark (CDP_ENGINE) spell differently, written once per engine. Models
    call these; everything else in the models is SQL both engines read alike. -#}

{#- A struct from (name, expression) pairs, in order. -#}
{% macro make_struct(fields) %}
  {{ return(adapter.dispatch('make_struct', 'cdp')(fields)) }}
{% endmacro %}

{% macro duckdb__make_struct(fields) -%}
  { {%- for name, value in fields %}'{{ name }}': {{ value }}{{ ', ' if not loop.last }}{% endfor -%} }
{%- endmacro %}

{% macro spark__make_struct(fields) -%}
  named_struct( {%- for name, value in fields %}'{{ name }}', {{ value }}{{ ', ' if not loop.last }}{% endfor -%} )
{%- endmacro %}

{#- One row per element of a list (in the select list). -#}
{% macro unnest_list(column) %}
  {{ return(adapter.dispatch('unnest_list', 'cdp')(column)) }}
{% endmacro %}

{% macro duckdb__unnest_list(column) -%} unnest({{ column }}) {%- endmacro %}

{% macro spark__unnest_list(column) -%} explode({{ column }}) {%- endmacro %}

{#- `select <keys>, <the struct's fields>, rank` from a list of structs, rank counting from 1. -#}
{% macro unnest_structs_ranked(relation, keys, column) %}
  {{ return(adapter.dispatch('unnest_structs_ranked', 'cdp')(relation, keys, column)) }}
{% endmacro %}

{% macro duckdb__unnest_structs_ranked(relation, keys, column) -%}
  select {{ keys }}, unnest({{ column }}, recursive := true), generate_subscripts({{ column }}, 1) as rank
  from {{ relation }}
{%- endmacro %}

{% macro spark__unnest_structs_ranked(relation, keys, column) -%}
  select {{ keys }}, element.*, position + 1 as rank
  from {{ relation }} lateral view posexplode({{ column }}) exploded as position, element
{%- endmacro %}

{#- Aggregate: the values as a list ordered by `order_by` (ascending expressions). -#}
{% macro ordered_list(value, order_by) %}
  {{ return(adapter.dispatch('ordered_list', 'cdp')(value, order_by)) }}
{% endmacro %}

{% macro duckdb__ordered_list(value, order_by) -%}
  list({{ value }} order by {{ order_by | join(', ') }})
{%- endmacro %}

{% macro spark__ordered_list(value, order_by) -%}
  transform(
    array_sort(collect_list(named_struct(
      {%- for key in order_by %}'k{{ loop.index }}', {{ key }}, {% endfor %}'v', {{ value }}))),
    entry -> entry.v)
{%- endmacro %}

{#- Aggregate: the `n` largest values (structs compare field by field), largest first. -#}
{% macro top_values(value, n) %}
  {{ return(adapter.dispatch('top_values', 'cdp')(value, n)) }}
{% endmacro %}

{% macro duckdb__top_values(value, n) -%} max({{ value }}, {{ n }}) {%- endmacro %}

{% macro spark__top_values(value, n) -%}
  slice(sort_array(collect_list({{ value }}), false), 1, {{ n }})
{%- endmacro %}

{#- The `n`-th largest value of a group: the smallest of its `n` largest (of all its values
    when it has fewer). -#}
{% macro nth_largest(value, n) %}
  {{ return(adapter.dispatch('nth_largest', 'cdp')(value, n)) }}
{% endmacro %}

{% macro duckdb__nth_largest(value, n) -%}
  list_min({{ cdp.duckdb__top_values(value, n) }})
{%- endmacro %}

{% macro spark__nth_largest(value, n) -%}
  array_min({{ cdp.spark__top_values(value, n) }})
{%- endmacro %}

{#- One 64-bit hash of several columns' values (equal values, equal hash). -#}
{% macro row_hash(columns) %}
  {{ return(adapter.dispatch('row_hash', 'cdp')(columns)) }}
{% endmacro %}

{% macro duckdb__row_hash(columns) -%} hash({{ columns | join(', ') }}) {%- endmacro %}

{% macro spark__row_hash(columns) -%} xxhash64({{ columns | join(', ') }}) {%- endmacro %}

{#- The first `n` elements of a list. -#}
{% macro list_head(column, n) %}
  {{ return(adapter.dispatch('list_head', 'cdp')(column, n)) }}
{% endmacro %}

{% macro duckdb__list_head(column, n) -%} {{ column }}[1:{{ n }}] {%- endmacro %}

{% macro spark__list_head(column, n) -%} slice({{ column }}, 1, {{ n }}) {%- endmacro %}

{% macro list_size(column) %}
  {{ return(adapter.dispatch('list_size', 'cdp')(column)) }}
{% endmacro %}

{% macro duckdb__list_size(column) -%} len({{ column }}) {%- endmacro %}

{% macro spark__list_size(column) -%} size({{ column }}) {%- endmacro %}

{% macro lists_overlap(left, right) %}
  {{ return(adapter.dispatch('lists_overlap', 'cdp')(left, right)) }}
{% endmacro %}

{% macro duckdb__lists_overlap(left, right) -%} list_has_any({{ left }}, {{ right }}) {%- endmacro %}

{% macro spark__lists_overlap(left, right) -%} arrays_overlap({{ left }}, {{ right }}) {%- endmacro %}

{#- Aggregate: the distinct non-null values, as a list in no particular order. -#}
{% macro distinct_list(value) %}
  {{ return(adapter.dispatch('distinct_list', 'cdp')(value)) }}
{% endmacro %}

{% macro duckdb__distinct_list(value) -%}
  list(distinct {{ value }}) filter (where {{ value }} is not null)
{%- endmacro %}

{% macro spark__distinct_list(value) -%} collect_set({{ value }}) {%- endmacro %}

{#- Aggregate: how many distinct values the lists hold together. -#}
{% macro count_distinct_in_lists(lists) %}
  {{ return(adapter.dispatch('count_distinct_in_lists', 'cdp')(lists)) }}
{% endmacro %}

{% macro duckdb__count_distinct_in_lists(lists) -%}
  len(list_distinct(flatten(list({{ lists }}))))
{%- endmacro %}

{% macro spark__count_distinct_in_lists(lists) -%}
  size(array_distinct(flatten(collect_list({{ lists }}))))
{%- endmacro %}

{#- The distinct, sorted, lower-cased, trimmed, non-empty items of a list typed as text. -#}
{% macro split_tags(column, separators) %}
  {{ return(adapter.dispatch('split_tags', 'cdp')(column, separators)) }}
{% endmacro %}

{% macro duckdb__split_tags(column, separators) -%}
  list_sort(list_distinct(list_filter(
      list_transform(regexp_split_to_array({{ column }}, '{{ separators }}'),
                     lambda tag: lower(trim(tag))),
      lambda tag: tag <> '')))
{%- endmacro %}

{% macro spark__split_tags(column, separators) -%}
  array_sort(array_distinct(filter(
      transform(split({{ column }}, '{{ separators }}'), tag -> lower(trim(tag))),
      tag -> tag <> '')))
{%- endmacro %}

{#- Whole-string regular expression match. -#}
{% macro regex_full_match(value, pattern) %}
  {{ return(adapter.dispatch('regex_full_match', 'cdp')(value, pattern)) }}
{% endmacro %}

{% macro duckdb__regex_full_match(value, pattern) -%}
  regexp_full_match({{ value }}, '{{ pattern }}')
{%- endmacro %}

{#- Spark's string literals read backslashes as escapes: the pattern's are doubled. -#}
{% macro spark__regex_full_match(value, pattern) -%}
  ({{ value }} rlike '^(?:{{ pattern | replace('\\', '\\\\') }})$')
{%- endmacro %}

{#- trim() of the given characters (a string of them). -#}
{% macro trim_chars(value, characters) %}
  {{ return(adapter.dispatch('trim_chars', 'cdp')(value, characters)) }}
{% endmacro %}

{% macro duckdb__trim_chars(value, characters) -%} trim({{ value }}, {{ characters }}) {%- endmacro %}

{% macro spark__trim_chars(value, characters) -%} btrim({{ value }}, {{ characters }}) {%- endmacro %}

{#- A date from text in a fixed format, given as strftime (DuckDB) and Java (Spark) patterns. -#}
{% macro parse_date(value, strftime_format, java_format) %}
  {{ return(adapter.dispatch('parse_date', 'cdp')(value, strftime_format, java_format)) }}
{% endmacro %}

{% macro duckdb__parse_date(value, strftime_format, java_format) -%}
  strptime({{ value }}, '{{ strftime_format }}')::date
{%- endmacro %}

{% macro spark__parse_date(value, strftime_format, java_format) -%}
  to_date({{ value }}, '{{ java_format }}')
{%- endmacro %}

{#- The type of instants (timestamps in UTC). -#}
{% macro type_instant() %}
  {{ return(adapter.dispatch('type_instant', 'cdp')()) }}
{% endmacro %}

{% macro duckdb__type_instant() -%} timestamptz {%- endmacro %}

{% macro spark__type_instant() -%} timestamp {%- endmacro %}

{#- The marts' contracts declare DuckDB's type names (docs/marts.md); on Spark they are read
    as Spark's own, so one contract serves both engines. -#}
{% macro spark__get_empty_schema_sql(columns) %}
  {%- set spark_types = {
        'varchar': 'string', 'varchar[]': 'array<string>', 'integer': 'int',
        'timestamp with time zone': 'timestamp'} -%}
  {%- set translated = {} -%}
  {%- for name, column in columns.items() -%}
    {%- set declared = column.get('data_type') or column.data_type -%}
    {%- set copy = column.copy() -%}
    {%- do copy.update({'data_type': spark_types.get(declared, declared)}) -%}
    {%- do translated.update({name: copy}) -%}
  {%- endfor -%}
  {{ return(dbt.default__get_empty_schema_sql(translated)) }}
{% endmacro %}

{% macro empty_list() %}
  {{ return(adapter.dispatch('empty_list', 'cdp')()) }}
{% endmacro %}

{% macro duckdb__empty_list() -%} [] {%- endmacro %}

{% macro spark__empty_list() -%} array() {%- endmacro %}

{#- Join each order to the latest rate of its currency on or before its day. `rates` carries
    next_rate_date (the currency's next rate day): DuckDB's ASOF join does not need it, Spark
    has no ASOF join and matches the one rate whose days cover the order's. -#}
{% macro join_latest_rate(orders, rates) %}
  {{ return(adapter.dispatch('join_latest_rate', 'cdp')(orders, rates)) }}
{% endmacro %}

{% macro duckdb__join_latest_rate(orders, rates) -%}
    asof left join {{ rates }}
        on {{ orders }}.currency = {{ rates }}.currency
        and {{ orders }}.order_day >= {{ rates }}.rate_date
{%- endmacro %}

{% macro spark__join_latest_rate(orders, rates) -%}
    left join {{ rates }}
        on {{ orders }}.currency = {{ rates }}.currency
        and {{ orders }}.order_day >= {{ rates }}.rate_date
        and ({{ rates }}.next_rate_date is null or {{ orders }}.order_day < {{ rates }}.next_rate_date)
{%- endmacro %}

{#- Aggregate: the values joined by `separator`, ordered by `order_by` (expressions). -#}
{% macro ordered_string_agg(value, separator, order_by) %}
  {{ return(adapter.dispatch('ordered_string_agg', 'cdp')(value, separator, order_by)) }}
{% endmacro %}

{% macro duckdb__ordered_string_agg(value, separator, order_by) -%}
  string_agg({{ value }}, '{{ separator }}' order by {{ order_by | join(', ') }})
{%- endmacro %}

{% macro spark__ordered_string_agg(value, separator, order_by) -%}
  listagg({{ value }}, '{{ separator }}') within group (order by {{ order_by | join(', ') }})
{%- endmacro %}

{#- A double rounded to `digits` decimals, halves up, the same on every engine: DuckDB's
    round() looks at the double's binary value and Spark's at its shortest decimal form, so
    on a half (0.24375) they part. Decimals are rounded with round() itself. -#}
{% macro round_half_up(value, digits) -%}
    (floor(({{ value }}) * 1e{{ digits }} + 0.5) / 1e{{ digits }})
{%- endmacro %}

{#- Microseconds since 1970 of a timestamp. -#}
{% macro epoch_microseconds(instant) %}
  {{ return(adapter.dispatch('epoch_microseconds', 'cdp')(instant)) }}
{% endmacro %}

{% macro duckdb__epoch_microseconds(instant) -%} epoch_us({{ instant }}) {%- endmacro %}

{% macro spark__epoch_microseconds(instant) -%} unix_micros({{ instant }}) {%- endmacro %}

{#- Whole days from `start` to `end` (dates). -#}
{% macro days_between(start, end) %}
  {{ return(adapter.dispatch('days_between', 'cdp')(start, end)) }}
{% endmacro %}

{% macro duckdb__days_between(start, end) -%} date_diff('day', {{ start }}, {{ end }}) {%- endmacro %}

{% macro spark__days_between(start, end) -%} datediff({{ end }}, {{ start }}) {%- endmacro %}

{#- Whole years from `birth` to `day` (dates): an age. -#}
{% macro whole_years(birth, day) -%}
    year({{ day }}) - year({{ birth }})
    - case when month({{ day }}) * 100 + day({{ day }}) < month({{ birth }}) * 100 + day({{ birth }})
           then 1 else 0 end
{%- endmacro %}

{#- A text as a SQL string literal. -#}
{% macro string_literal(text) %}
  {{ return(adapter.dispatch('string_literal', 'cdp')(text)) }}
{% endmacro %}

{% macro default__string_literal(text) -%}
  '{{ text | replace("'", "''") }}'
{%- endmacro %}

{#- Spark reads backslashes in literals as escapes -#}
{% macro spark__string_literal(text) -%}
  '{{ text | replace("\\", "\\\\") | replace("'", "\\'") }}'
{%- endmacro %}
