"""Per-person models recompute only the persons touched since the last build, the observations
and what is read from them only the records whose sources changed, and the marts still equal
those of a full refresh on the same inputs."""

import gzip
import json
import re
import shutil
from pathlib import Path

import duckdb
import sqlalchemy as sa

from orchestration.defs.shop.demo import load_shop_seeds
from orchestration.warehouse import compact_fragmented_tables, connect

from .conftest import SEEDS, run_cdp
from .identity_dbt import dbt
from .test_gates import content_hash

LAST_DAY = "events_20261021"
KEPT = [  # the models a build updates instead of computing them again
    "intermediate.int_customers__attribute_candidates",
    "intermediate.int_customers__web_activity",
    "intermediate.int_customers__purchases",
    "intermediate.int_customers__email_engagement",
    "intermediate.int_customers__profiles",
    "intermediate.int_customers__products_bought",
    "intermediate.int_customers__co_purchases",
    "intermediate.int_customers__orders",
    "intermediate.int_campaigns__attributed_orders",
    "identity.int_identity__observations",
    "identity.int_identity__nodes",
    "identity.int_identity__record_identifiers",
    "identity.int_identity__blocked_identifiers",
    "identity.int_identity__components_without_devices",
    "identity.int_identity__components",
]


def kept_rows(data_dir: Path) -> dict[str, list]:
    """Every row of the models kept from build to build, in one order; without the time a
    source row was loaded (a full refresh loads every row again)."""
    columns = "columns(lambda c: c <> '_loaded_at')"
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return {
            model: con.execute(
                f"select t::varchar as row from (select {columns} from {model}) as t order by row"
            ).fetchall()
            for model in KEPT
        }


def last_build(data_dir: Path) -> dict[str, str]:
    """What the last build's int_customers__touched_persons listed."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return dict(
            con.execute(
                "select input, mark from intermediate.int_customers__touched_persons__marks "
                "where input in ('this_build:touched', 'this_build:everyone')"
            ).fetchall()
        )


def persons(data_dir: Path) -> int:
    with duckdb.connect(str(data_dir / "marts.duckdb"), read_only=True) as con:
        return con.execute("select count(*) from customer_profiles").fetchall()[0][0]


def recent_sends(data_dir: Path, email: str) -> int:
    """The recent sends int_customers__email_engagement counts for the person of `email`."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(
            "select recent_sent from intermediate.int_customers__email_engagement "
            "inner join identity.int_identity__customer_identities using (customer_key) "
            "where identifier_type = 'email' and identifier_value = ?",
            [email],
        ).fetchall()[0][0]


def email_sent_on(shop: Path, email: str, occurred_at: str) -> None:
    with sa.create_engine(f"sqlite:///{shop}").begin() as db:
        db.execute(
            sa.text(
                "insert into email_events (event_id, email, campaign_id, variant, event_type, "
                "occurred_at) select max(event_id) + 1, :email, 'cmp_004', 'A', 'sent', :at "
                "from email_events"
            ),
            {"email": email, "at": occurred_at},
        )


def night_of_shop_changes(shop: Path) -> None:
    """What a shop does in a day: orders cancelled, an account renamed, emails sent and
    opened, a new order by a known customer under a new address."""
    at = "'2026-10-22 05:30:00+00'"
    with sa.create_engine(f"sqlite:///{shop}").begin() as db:
        db.execute(
            sa.text(
                f"update orders set status = 'cancelled', updated_at = {at} "
                "where order_id in (select order_id from orders order by order_id limit 3)"
            )
        )
        db.execute(
            sa.text(
                f"update customers set last_name = 'Renamed', updated_at = {at} "
                "where customer_id = (select min(customer_id) from customers)"
            )
        )
        db.execute(
            sa.text(
                "insert into email_events (event_id, email, campaign_id, variant, event_type, "
                "occurred_at) select max(event_id) + 1, 'ella.devries@gmail.com', 'cmp_004', "
                f"'A', 'open', {at} from email_events"
            )
        )
        db.execute(
            sa.text(
                "insert into orders (order_id, customer_id, email, phone, ship_country, "
                "status, channel, is_gift, total_amount, currency, ordered_at, updated_at) "
                "select max(order_id) + 1, 79783, 'ella.new@example.com', null, 'GB', "
                f"'paid', 'web', false, 42.50, 'GBP', {at}, {at} from orders"
            )
        )


def device_around(export: Path, day: str) -> str:
    """A device seen on the export days before and after `day`, whose events of `day` hold no
    account and no purchase: leaving them out moves nothing that identifies anyone."""
    before, after = int(day) - 1, int(day) + 1
    with duckdb.connect() as con:
        return con.execute(
            f"""
            select user_pseudo_id
            from read_json_auto('{export}/events_{day}-*.json.gz', union_by_name = true)
            where user_pseudo_id in (
                select user_pseudo_id from read_json_auto('{export}/events_{before}/*.json'))
              and user_pseudo_id in (
                select user_pseudo_id from read_parquet('{export}/events_{after}/*.parquet'))
            group by user_pseudo_id
            having count(user_id) = 0 and count(*) filter (where event_name = 'purchase') = 0
            order by user_pseudo_id
            limit 1
            """
        ).fetchall()[0][0]


def device_ending(export: Path, day: str) -> str:
    """A device seen on `day` and not on the export day after: leaving out its events of `day`
    moves its last sighting, or leaves nothing of it."""
    with duckdb.connect() as con:
        return con.execute(
            f"""
            select min(user_pseudo_id)
            from read_json_auto('{export}/events_{day}-*.json.gz', union_by_name = true)
            where user_pseudo_id not in (
                select user_pseudo_id from read_parquet('{export}/events_{int(day) + 1}/*.parquet'))
            """
        ).fetchall()[0][0]


def reexport_without(export: Path, day: str, devices: set[str]) -> None:
    """The export rewrites a day's files without some devices' events."""
    for path in sorted(export.glob(f"events_{day}-*.json.gz")):
        lines = gzip.decompress(path.read_bytes()).decode().splitlines()
        kept = [line for line in lines if json.loads(line).get("user_pseudo_id") not in devices]
        path.write_bytes(gzip.compress(("\n".join(kept) + "\n").encode()))


def test_a_night_recomputes_only_touched_persons_and_equals_a_full_refresh(tmp_path):
    export, data_dir, shop = tmp_path / "export", tmp_path / "data", tmp_path / "shop.sqlite"
    shutil.copytree(
        SEEDS / "ga4", export, ignore=shutil.ignore_patterns("events_intraday_*", LAST_DAY)
    )
    load_shop_seeds(sa.create_engine(f"sqlite:///{shop}"))
    # inside the 90-day engagement window on the 21st, outside it on the 22nd: nothing else
    # touches this person on the second night
    email_sent_on(shop, "window.edge@fastmail.com", "2026-07-23 12:00:00+00")
    env = {"CDP_GA4_EXPORT_URI": str(export), "CDP_SHOP_DB_URL": f"sqlite:///{shop}"}

    first = run_cdp(data_dir, CDP_AS_OF="2026-10-21", **env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert unit_tests_run(first) > 0  # the first publication tests the project's SQL
    assert last_build(data_dir) == {
        "this_build:touched": str(persons(data_dir)),
        "this_build:everyone": "true",
    }
    assert recent_sends(data_dir, "window.edge@fastmail.com") == 1

    # the next night: a new export day, the shop's changes, and a new date
    shutil.copytree(SEEDS / "ga4" / LAST_DAY, export / LAST_DAY)
    night_of_shop_changes(shop)
    night = run_cdp(data_dir, CDP_AS_OF="2026-10-22", **env)
    assert night.returncode == 0, night.stderr[-3000:]
    assert unit_tests_run(night) == 0  # the same project as the publication's
    assert "unit tests skipped" in night.stdout
    listed = last_build(data_dir)
    assert listed["this_build:everyone"] == "false"
    assert 0 < int(listed["this_build:touched"]) < persons(data_dir) / 2
    with duckdb.connect(str(data_dir / "marts.duckdb"), read_only=True) as con:
        renamed = con.execute(
            "select count(*) from customer_profiles where last_name = 'Renamed'"
        ).fetchall()[0][0]
    assert renamed == 1
    assert recent_sends(data_dir, "window.edge@fastmail.com") == 0

    # the export rewrites a recent day without two devices' events: what the first identifies
    # stays as it was, only what it did that day changes; the second was last seen that day
    day = "20261020"
    reexport_without(export, day, {device_around(export, day), device_ending(export, day)})
    again = run_cdp(data_dir, CDP_AS_OF="2026-10-22", **env)
    assert again.returncode == 0, again.stderr[-3000:]
    listed = last_build(data_dir)
    assert listed["this_build:everyone"] == "false"
    assert 0 < int(listed["this_build:touched"]) < persons(data_dir) / 2
    nightly, nightly_rows = content_hash(data_dir / "marts.duckdb"), kept_rows(data_dir)

    refreshed = run_cdp(data_dir, "--full-refresh", CDP_AS_OF="2026-10-22", **env)
    assert refreshed.returncode == 0, refreshed.stderr[-3000:]
    assert last_build(data_dir)["this_build:everyone"] == "true"
    assert content_hash(data_dir / "marts.duckdb") == nightly
    assert kept_rows(data_dir) == nightly_rows


def unit_tests_run(result) -> int:
    """How many of dbt's unit tests the run's build started, from its full log."""
    log = Path(re.search(r"full log: (\S+)", result.stdout).group(1))
    return log.read_text().count("START unit_test")


def purchases(data_dir: Path) -> list:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(
            "select t::varchar as row from intermediate.int_customers__purchases as t order by row"
        ).fetchall()


def test_a_per_person_model_built_by_hand_recomputes_everyone(demo_warehouse, tmp_path):
    """Built by hand without int_customers__touched_persons, whose list the last build emptied,
    a per-person model cannot know whom its changed inputs moved: it recomputes everyone, and
    equals a full refresh (here: fewer order statuses count as valid)."""
    data_dir = tmp_path / "data"
    shutil.copytree(demo_warehouse.parent, data_dir)
    delivered_only = {"valid_order_statuses": ["delivered"]}
    select = ["--select", "int_customers__orders", "int_customers__purchases"]
    before = purchases(data_dir)
    by_hand = dbt(data_dir, "run", *select, variables=delivered_only)
    assert by_hand.returncode == 0, by_hand.stdout[-3000:]
    after = purchases(data_dir)
    assert after != before
    refreshed = dbt(data_dir, "run", *select, "--full-refresh", variables=delivered_only)
    assert refreshed.returncode == 0, refreshed.stdout[-3000:]
    assert purchases(data_dir) == after


def per_person_rows(data_dir: Path) -> dict[str, list]:
    return {model: rows for model, rows in kept_rows(data_dir).items() if "int_customers" in model}


PER_PERSON = ["tag:per_person", "int_customers__touched_persons"]


def settled_copy(demo_warehouse: Path, tmp_path: Path) -> Path:
    """A copy of the demo's data dir whose per-person models were just built incrementally."""
    data_dir = tmp_path / "data"
    shutil.copytree(demo_warehouse.parent, data_dir)
    settled = dbt(data_dir, "run", "--select", *PER_PERSON, definition="same project")
    assert settled.returncode == 0, settled.stdout[-3000:]
    return data_dir


def test_persons_listed_stay_listed_until_every_per_person_model_applied_them(
    demo_warehouse, tmp_path
):
    """The list of touched persons built by hand with only the profiles is not emptied: the
    other per-person models, built later, still recompute those persons, and equal a full
    refresh."""
    data_dir = settled_copy(demo_warehouse, tmp_path)
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        (order_id,) = con.execute(
            "select order_id from staging.stg_shop__orders "
            "where status = 'delivered' order by order_id limit 1"
        ).fetchone()
        con.execute(
            "update raw_shop.orders set status = 'cancelled', _loaded_at = now() "
            "where order_id = ?",
            [order_id],
        )
    before = per_person_rows(data_dir)

    profiles_only = dbt(
        data_dir, "run", "--select", "stg_shop__orders", "int_customers__orders",
        "int_customers__touched_persons", "int_customers__profiles", definition="same project",
    )  # fmt: skip
    assert profiles_only.returncode == 0, profiles_only.stdout[-3000:]
    assert last_build(data_dir)["this_build:touched"] != "0"
    the_rest = dbt(data_dir, "run", "--select", *PER_PERSON, definition="same project")
    assert the_rest.returncode == 0, the_rest.stdout[-3000:]
    nightly = per_person_rows(data_dir)
    assert nightly != before

    refreshed = dbt(data_dir, "run", "--select", *PER_PERSON, "--full-refresh")
    assert refreshed.returncode == 0, refreshed.stdout[-3000:]
    assert per_person_rows(data_dir) == nightly


def test_a_list_every_per_person_model_applied_is_not_listed_again(demo_warehouse, tmp_path):
    """Two per-person models that finish at once each see only their own `applied:` mark and
    neither empties the list (here: the list put back as they leave it). The next build
    reads the marks, finds every model applied it, and lists no one again."""
    data_dir = settled_copy(demo_warehouse, tmp_path)
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        con.execute(
            "insert into intermediate.int_customers__touched_persons "
            "select distinct customer_key from identity.int_identity__customer_identities "
            "union all select null"
        )
    again = dbt(data_dir, "run", "--select", *PER_PERSON, definition="same project")
    assert again.returncode == 0, again.stdout[-3000:]
    assert last_build(data_dir) == {"this_build:touched": "0", "this_build:everyone": "false"}


def survey_answers(data_dir: Path) -> dict[int, str]:
    """stg_sheets__survey_responses by sheet row."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return dict(
            con.execute(
                "select survey_row, t::varchar from staging.stg_sheets__survey_responses as t"
            ).fetchall()
        )


def test_survey_answers_are_cleaned_again_only_when_the_tab_is_loaded_again(
    demo_warehouse, tmp_path
):
    """The survey tab's staging is kept: a build with the tab as loaded reads none of it, one
    after the erasure step deleted a row drops that row, and one after a new load of the tab
    equals a full refresh."""
    data_dir = tmp_path / "data"
    shutil.copytree(demo_warehouse.parent, data_dir)
    select = ["--select", "stg_sheets__survey_responses"]
    kept = survey_answers(data_dir)
    first, erased, changed = sorted(kept)[:3]
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        # a value changed behind the extractor's back, load time kept: not read again
        con.execute(
            "update raw_sheets.survey_responses set age = '99' where _row_number = ?", [first]
        )
        con.execute("delete from raw_sheets.survey_responses where _row_number = ?", [erased])
    unchanged = dbt(data_dir, "run", *select, definition="same project")
    assert unchanged.returncode == 0, unchanged.stdout[-3000:]
    after_erasure = survey_answers(data_dir)
    assert erased in kept and erased not in after_erasure
    assert after_erasure == {row: text for row, text in kept.items() if row != erased}

    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        con.execute(  # the extractor replaces a changed tab whole, every row loaded now
            "create or replace table raw_sheets.survey_responses as "
            "select * replace (case when _row_number = ? then '+1 415 555 0100' else phone end "
            "as phone, now() as _loaded_at) from raw_sheets.survey_responses",
            [changed],
        )
    reloaded = dbt(data_dir, "run", *select, definition="same project")
    assert reloaded.returncode == 0, reloaded.stdout[-3000:]
    nightly = survey_answers(data_dir)
    assert "99" in nightly[first] and "+14155550100" in nightly[changed]
    assert nightly.keys() == after_erasure.keys()

    refreshed = dbt(data_dir, "run", *select, "--full-refresh", definition="same project")
    assert refreshed.returncode == 0, refreshed.stdout[-3000:]
    assert survey_answers(data_dir) == nightly


def recipient_rows(data_dir: Path) -> dict[tuple, tuple]:
    """int_campaigns__recipients by (campaign, variant, email)."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("select * from intermediate.int_campaigns__recipients").fetchall()
    return {row[:3]: row[3:] for row in rows}


def test_campaign_recipients_recompute_only_the_groups_of_new_email_events(
    demo_warehouse, tmp_path
):
    """A build after new email events recomputes only their (campaign, variant, email) groups:
    a kept row made wrong here stays wrong while one of a new event's group changes. After an
    event was deleted (what the erasure step does) every group is recomputed, as a full
    refresh computes it."""
    data_dir = tmp_path / "data"
    shutil.copytree(demo_warehouse.parent, data_dir)
    select = ["--select", "stg_shop__email_events", "int_campaigns__recipients"]
    settled = dbt(data_dir, "run", *select, definition="same project")
    assert settled.returncode == 0, settled.stdout[-3000:]
    rows = recipient_rows(data_dir)
    sent_only = sorted(key for key, row in rows.items() if row[0] and not any(row[3:]))
    kept, clicked = sent_only[0], next(key for key in sent_only if key[2] != sent_only[0][2])
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        con.execute(
            "update intermediate.int_campaigns__recipients set opened = true "
            "where (campaign_id, variant, email) = (?, ?, ?)",
            list(kept),
        )
        con.execute(
            "insert into raw_shop.email_events select max(event_id) + 1, ?, ?, ?, 'click', "
            "'2026-10-21 09:00:00+00', now() from raw_shop.email_events",
            [clicked[2], clicked[0], clicked[1]],
        )

    night = dbt(data_dir, "run", *select, definition="same project")
    assert night.returncode == 0, night.stdout[-3000:]
    after = recipient_rows(data_dir)
    assert after[clicked][4:6] == (True, True)  # opened and clicked now
    assert after[kept][4] is True  # not recomputed: still as it was made wrong
    assert len(after) == len(rows)

    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        con.execute(
            "delete from staging.stg_shop__email_events where email_event_id = "
            "(select max(email_event_id) from staging.stg_shop__email_events)"
        )
    erased = dbt(
        data_dir, "run", "--select", "int_campaigns__recipients", definition="same project"
    )
    assert erased.returncode == 0, erased.stdout[-3000:]
    recomputed = recipient_rows(data_dir)
    assert recomputed == rows  # the click gone, and the row made wrong computed again
    refreshed = dbt(data_dir, "run", "--select", "int_campaigns__recipients", "--full-refresh")
    assert refreshed.returncode == 0, refreshed.stdout[-3000:]
    assert recipient_rows(data_dir) == recomputed


def staged_email_events(data_dir: Path) -> int:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute("select count(*) from staging.stg_shop__email_events").fetchone()[0]


def test_a_shop_staging_table_written_with_a_key_twice_stops_the_build(demo_warehouse, tmp_path):
    """The shop's staging tables check the keys a build wrote before it commits, in place of a
    uniqueness test of every row: a key loaded again replaces its row, but a key written twice
    fails the build and leaves the table as it was."""
    data_dir = tmp_path / "data"
    shutil.copytree(demo_warehouse.parent, data_dir)
    select = ["--select", "stg_shop__email_events"]
    before = staged_email_events(data_dir)
    first = "select min(event_id) from raw_shop.email_events"
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        # an event read again from the shop, as the extractor merges it: its row replaced
        con.execute(
            "create temp table again as select * replace (now() as _loaded_at) "
            f"from raw_shop.email_events where event_id = ({first})"
        )
        con.execute(f"delete from raw_shop.email_events where event_id = ({first})")
        con.execute("insert into raw_shop.email_events select * from again")
    replaced = dbt(data_dir, "run", *select, definition="same project")
    assert replaced.returncode == 0, replaced.stdout[-3000:]
    assert staged_email_events(data_dir) == before

    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        # a new event loaded twice (the extractor never does: written by other means)
        con.execute(
            "create temp table new as select * replace ((select max(event_id) + 1 from "
            f"raw_shop.email_events) as event_id, now() as _loaded_at) from raw_shop.email_events "
            f"where event_id = ({first})"
        )
        con.execute("insert into raw_shop.email_events select * from new union all from new")
    twice = dbt(data_dir, "run", *select, definition="same project")
    assert twice.returncode != 0
    assert 'stg_shop__email_events": 1 value(s) of email_event_id twice' in twice.stdout
    assert staged_email_events(data_dir) == before  # nothing committed


def test_a_table_storing_more_deleted_rows_than_live_ones_is_written_again(
    demo_warehouse, tmp_path
):
    """Checkpoints do not vacuum (profiles.yml, `connect`), so a deleted row stays stored;
    after publishing, a table storing more deleted rows than live ones is written again with
    the same rows and its definition, and a table below that is left as it is."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(demo_warehouse, path)
    profiles, activity = "int_customers__profiles", "int_customers__web_activity"

    def stored_and_live(con, table: str) -> tuple[int, int]:
        (stored,) = con.execute(
            "select estimated_size from duckdb_tables() where table_name = ?", [table]
        ).fetchone()
        return stored, con.execute(f"select count(*) from intermediate.{table}").fetchone()[0]

    def content(con, table: str) -> tuple[list, list]:
        rows = con.execute(f"select * from intermediate.{table} order by all").fetchall()
        columns = con.execute(f"describe intermediate.{table}").fetchall()
        return rows, columns

    with connect(path) as con:
        con.execute(f"delete from intermediate.{profiles} where hash(customer_key) % 4 <> 0")
        con.execute(f"delete from intermediate.{activity} where hash(customer_key) % 4 = 0")
        con.execute("checkpoint")
        stored, live = stored_and_live(con, profiles)
        assert stored > 2 * live > 0  # three in four deleted, still stored
        kept = stored_and_live(con, activity)
        assert kept[1] < kept[0] <= 2 * kept[1]  # one in four
        before = {table: content(con, table) for table in (profiles, activity)}

        dropped = compact_fragmented_tables(con, min_rows=0)

    assert dropped == {f"intermediate.{profiles}": stored - live}
    with duckdb.connect(str(path), read_only=True) as con:
        assert stored_and_live(con, profiles) == (live, live)
        assert stored_and_live(con, activity) == kept
        assert {table: content(con, table) for table in (profiles, activity)} == before
