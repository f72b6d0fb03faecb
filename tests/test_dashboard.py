"""The dashboard in a real browser, the BI-tool recipe, and publication without personal data."""

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

from orchestration import dashboard
from orchestration.defs.dbt.marts import PUBLISHED_MARTS
from orchestration.defs.privacy.masking import MASKED_COLUMNS, identifier_hash
from orchestration.defs.publish.assets import publish_marts
from orchestration.settings import load_settings

from .conftest import REPO, cdp_env, unreachable

CDP = str(Path(sys.executable).parent / "cdp")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SALT = "test-salt"


def cdp(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CDP, *args],
        env=cdp_env(data_dir, **env),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_build_without_published_marts_says_how_to_make_them(tmp_path):
    done = cdp(tmp_path / "data", "dashboard", "build")
    assert done.returncode == 1
    assert "no published marts" in done.stderr and "`cdp run`" in done.stderr
    serve = cdp(tmp_path / "data", "dashboard", "serve", "--port", "0")
    assert serve.returncode == 1 and "cdp dashboard build" in serve.stderr
    # marts from before a table the pages read: the page, the query and the fix are named
    (tmp_path / "data").mkdir()
    duckdb.connect(str(tmp_path / "data" / "marts.duckdb")).close()
    old = cdp(tmp_path / "data", "dashboard", "build")
    assert old.returncode == 1
    assert "dashboard/pages/index.md, query overview" in old.stderr
    assert "`cdp run` publishes them anew" in old.stderr


def test_publish_pii_accepts_only_on_and_off():
    assert load_settings({}).publish_pii is True
    assert load_settings({"CDP_PUBLISH_PII": "off"}).publish_pii is False
    with pytest.raises(ValueError, match="CDP_PUBLISH_PII"):
        load_settings({"CDP_PUBLISH_PII": "no"})


def test_hash_normalizes_as_identity_does():
    kind, digest = identifier_hash(SALT, "  Alice@Example.COM ")
    assert kind == "email"
    assert digest == hashlib.sha256(f"{SALT}:email:alice@example.com".encode()).hexdigest()
    assert identifier_hash(SALT, "(202) 555-0143")[1] == identifier_hash(SALT, "+12025550143")[1]
    with pytest.raises(ValueError, match="neither an email"):
        identifier_hash(SALT, "not a thing")


@pytest.fixture(scope="module")
def served_demo(demo_warehouse, tmp_path_factory):
    """`cdp dashboard build` on a copy of the demo's marts, then `cdp dashboard serve`."""
    data_dir = tmp_path_factory.mktemp("dashboard") / "data"
    data_dir.mkdir()
    shutil.copy(demo_warehouse.parent / "marts.duckdb", data_dir / "marts.duckdb")
    started = time.perf_counter()
    built = cdp(data_dir, "dashboard", "build")
    assert built.returncode == 0, built.stdout + built.stderr
    build_seconds = time.perf_counter() - started
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [CDP, "dashboard", "serve", "--port", str(port)],
        env=cdp_env(data_dir),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).close()
            break
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.3)
    try:
        yield url, data_dir, build_seconds
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # a machine too busy to let it stop in time
            os.killpg(server.pid, signal.SIGKILL)
            server.communicate()


def screenshot_dir(data_dir: Path) -> Path:
    """Under CI, the checkout's data folder, kept as the run's artifacts; else the test's."""
    if os.environ.get("CI", "").lower() == "true":
        return REPO / "data" / "screenshots"
    return data_dir / "screenshots"


def test_every_page_loads_in_chromium_with_the_marts_numbers(served_demo, demo_warehouse):
    url, data_dir, build_seconds = served_demo
    assert build_seconds < 60, f"the dashboard took {build_seconds:.0f}s to build"
    if not Path(CHROMIUM).exists():
        unreachable(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with duckdb.connect(str(demo_warehouse.parent / "marts.duckdb"), read_only=True) as con:
        people = con.execute("select count(*) from customer_profiles").fetchone()[0]
        buyers = con.execute("select count(*) from customer_profiles where orders > 0").fetchone()
        email, key = con.execute(
            "select identifier_value, customer_key from customer_identities "
            "where identifier_type = 'email' order by 1 limit 1"
        ).fetchone()
    shots = screenshot_dir(data_dir)
    shots.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
        page.on(
            "response",
            lambda r: r.status >= 400 and problems.append(f"{r.status} for {r.url}"),
        )
        for slug, path in dashboard.pages():
            response = page.goto(url + path)
            assert response.status == 200, path
            charts = page.locator("figure.chart")
            if slug != dashboard.LIVE_PAGE:
                assert charts.count() >= 1, f"{path} shows no chart"
            assert page.locator("figure.chart.empty").count() == 0, f"{path}: an empty chart"
            for i in range(charts.count()):
                chart = charts.nth(i)
                title = chart.locator("figcaption").inner_text()
                assert int(chart.get_attribute("data-points")) > 0, f"{path}: {title} is empty"
                box = chart.locator("svg").bounding_box()
                assert box and box["width"] > 100 and box["height"] > 100, f"{path}: {title}"
            page.screenshot(path=str(shots / f"{slug}.png"), full_page=True)
            if slug == "index":
                headline = page.get_by_test_id("headline-people").inner_text()
                assert int(re.sub(r"\D", "", headline)) == people, headline
                shown = page.locator(".big-value .number[data-column=buyers]").inner_text()
                assert int(re.sub(r"\D", "", shown)) == buyers[0]
        # the lookup: type an email, get its person's profile, identifiers, recommendations
        page.goto(url + "/lookup/")
        page.fill("input[name=q]", email.upper())
        page.press("input[name=q]", "Enter")
        page.wait_for_load_state()
        assert page.get_by_test_id("customer-key").inner_text() == key
        assert email in page.locator("main").inner_text()
        page.screenshot(path=str(shots / "lookup-found.png"), full_page=True)
        browser.close()
    assert problems == []
    assert sorted(p.stem for p in shots.glob("*.png")) == sorted(
        [slug for slug, _ in dashboard.pages()] + ["lookup-found"]
    )


REFLECT = """
import json, sys
import sqlalchemy as sa
engine = sa.create_engine(sys.argv[1], connect_args={"read_only": True})
metadata = sa.MetaData()
metadata.reflect(engine)
with engine.connect() as connection:
    print(json.dumps({
        name: [[c.name for c in table.columns],
               connection.execute(sa.select(sa.func.count()).select_from(table)).scalar()]
        for name, table in metadata.tables.items()
    }))
"""


def test_superset_and_metabase_recipe_reflects_every_mart(demo_warehouse, tmp_path):
    """The README's SQLAlchemy URL through duckdb-engine, read-only, in an environment like
    Superset's (SQLAlchemy 1.4; duckdb-engine cannot reflect columns under SQLAlchemy 2.1)."""
    readme = (REPO / "README.md").read_text()
    (template,) = set(re.findall(r"`(duckdb:///[^`]+)`", readme))
    marts = demo_warehouse.parent / "marts.duckdb"
    url = template.replace("/path/to/data/marts.duckdb", str(marts))
    venv = tmp_path / "bi"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    installed = subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "--quiet",
            "duckdb-engine==0.17.0",
            "sqlalchemy>=1.4,<2",
            f"duckdb=={duckdb.__version__}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if installed.returncode != 0:
        unreachable(f"pip could not install duckdb-engine: {installed.stderr[-500:]}")
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", REFLECT, url],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reflected = json.loads(done.stdout)
    assert set(reflected) == set(PUBLISHED_MARTS) | {"run_quality"}
    with duckdb.connect(str(marts), read_only=True) as con:
        for table, (columns, rows) in reflected.items():
            assert columns == [
                c
                for (c,) in con.execute(
                    "select column_name from information_schema.columns where table_name = ? "
                    "order by ordinal_position",
                    [table],
                ).fetchall()
            ]
            assert rows == con.execute(f"select count(*) from {table}").fetchone()[0]


def test_run_quality_holds_the_runs_checks_and_every_source_table(demo_warehouse):
    output = (demo_warehouse.parent.parent / "cdp_run.stdout").read_text()
    passed = int(re.search(r"checks +(\d+) passed", output).group(1))
    with duckdb.connect(str(demo_warehouse.parent / "marts.duckdb"), read_only=True) as con:
        outcomes = dict(
            con.execute(
                "select outcome, count(*) from run_quality where kind = 'check' group by 1"
            ).fetchall()
        )
        fresh = con.execute(
            "select subject, rows, latest_at from run_quality where kind = 'freshness'"
        ).fetchall()
        run_ids = con.execute("select count(distinct run_id) from run_quality").fetchone()[0]
    assert outcomes == {"passed": passed}
    assert run_ids == 1
    with duckdb.connect(str(demo_warehouse), read_only=True) as con:
        raw = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_schema like 'raw_%' and not starts_with(table_name, '_')"
        ).fetchall()
        counts = {t: con.execute(f"select count(*) from {t}").fetchone()[0] for (t,) in raw}
    assert {subject: rows for subject, rows, _ in fresh} == counts
    assert all(latest is not None for _, _, latest in fresh)


def test_masked_publication_holds_no_personal_data_and_is_found_by_hash(demo_warehouse, tmp_path):
    plain = demo_warehouse.parent / "marts.duckdb"
    masked = tmp_path / "marts.duckdb"
    counts = publish_marts(demo_warehouse, masked, mask_salt=SALT)
    with duckdb.connect(str(plain), read_only=True) as con:
        email, phone, key = con.execute(
            "select email, phone, customer_key from customer_profiles "
            "where email is not null and phone is not null order by customer_key limit 1"
        ).fetchone()
        plain_counts = {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in counts}
        plain_columns = con.execute(
            "select table_name, column_name, data_type from information_schema.columns "
            "where table_name <> 'run_quality' order by all"
        ).fetchall()
    assert counts == plain_counts
    with duckdb.connect(str(masked), read_only=True) as con:
        assert (
            con.execute(
                "select table_name, column_name, data_type from information_schema.columns "
                "where table_name <> 'run_quality' order by all"
            ).fetchall()
            == plain_columns
        )
        for table in PUBLISHED_MARTS:
            text = con.execute(f"select string_agg(t::varchar, ' ') from {table} as t").fetchone()
            text = text[0] or ""
            assert "@" not in text, f"{table} holds an email"
            assert not re.search(r"\+\d{8,15}\b", text), f"{table} holds a phone"
        assert not con.execute(
            "select count(*) from customer_profiles "
            "where coalesce(first_name, last_name, birth_date::varchar) is not null"
        ).fetchone()[0]
        # the hash `cdp hash` prints is the value published, in profiles and identities alike
        for value in (email, phone):
            kind, digest = identifier_hash(SALT, value)
            assert con.execute(
                f"select customer_key from customer_profiles where {kind} = ?", [digest]
            ).fetchone() == (key,)
            assert con.execute(
                "select customer_key from customer_identities "
                "where identifier_type = ? and identifier_value = ?",
                [kind, digest],
            ).fetchone() == (key,)
        # and it is erasure's hash (privacy/erasure.py): the same salt makes the same value
        assert (
            con.execute("select sha256(? || ':' || 'email' || ':' || ?)", [SALT, email]).fetchone()[
                0
            ]
            == identifier_hash(SALT, email)[1]
        )
        # the lookup page finds the person by that hash
        page = dashboard.render_page(con, "lookup", {"q": identifier_hash(SALT, email)[1]})
        assert f'data-testid="customer-key">{key}<' in page
    assert set(MASKED_COLUMNS) <= set(PUBLISHED_MARTS)


def test_cdp_hash_uses_the_data_dirs_salt(tmp_path):
    data_dir = tmp_path / "data"
    missing = cdp(data_dir, "hash", "alice@example.com")
    assert missing.returncode == 1 and "privacy.salt" in missing.stderr
    data_dir.mkdir()
    (data_dir / "privacy.salt").write_text(SALT + "\n")
    done = cdp(data_dir, "hash", " Alice@Example.com")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == identifier_hash(SALT, "alice@example.com")[1]
    configured = cdp(data_dir, "hash", "alice@example.com", CDP_PRIVACY_SALT="other")
    assert configured.stdout.strip() == identifier_hash("other", "alice@example.com")[1]
