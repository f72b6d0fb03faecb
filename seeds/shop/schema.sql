-- The shop's operational tables (docs/sources.md). Used to load the demo CSVs into SQLite for
-- the default run and into Postgres for tests.
create table customers (
    customer_id bigint primary key,
    email text,
    phone text,
    first_name text,
    last_name text,
    birth_date date,
    gender text,
    city text,
    country text,
    company_name text,
    marketing_consent boolean not null,
    created_at timestamptz not null,
    updated_at timestamptz not null
);
create table products (
    product_id bigint primary key,
    sku text not null unique,
    name text,
    category text,
    price numeric(12, 2),
    updated_at timestamptz not null
);
create table orders (
    order_id bigint primary key,
    customer_id bigint,
    email text,
    phone text,
    ship_country text,
    status text not null,
    channel text not null,
    is_gift boolean not null,
    total_amount numeric(12, 2) not null,
    currency text not null,
    ordered_at timestamptz not null,
    updated_at timestamptz not null
);
create table order_items (
    order_id bigint,
    line_no int,
    product_id bigint,
    quantity int,
    unit_price numeric(12, 2),
    primary key (order_id, line_no)
);
create table email_events (
    event_id bigint primary key,
    email text,
    campaign_id text,
    variant text,
    event_type text,
    occurred_at timestamptz not null
);
