"""`cdp dashboard build` and `cdp dashboard serve`: the pages of `dashboard/pages/` (Markdown
with SQL blocks, as in a BI-as-code project) rendered over the published marts into a static
site in `$CDP_DATA_DIR/dashboard/`.

Each page's SQL runs once at build time on `marts.duckdb`, opened read-only; the charts are
drawn then as SVG, so the site needs no JavaScript, no CDN and no network to be read. Only the
customer lookup runs its queries when asked, in `cdp dashboard serve`, with the typed value
as a query parameter. docs/dashboard.md says why this is not an Evidence project.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import html
import http.server
import io
import re
import shutil
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import duckdb
import jinja2
import markdown
import yaml
from markupsafe import Markup

from orchestration.settings import REPO_ROOT, Settings

PAGES_DIR = REPO_ROOT / "dashboard" / "pages"
# The lookup page answers at request time; every other page is built once.
LIVE_PAGE = "lookup"
SQL_BLOCK = re.compile(r"^```sql (\w+)\n(.*?)^```\n", re.S | re.M)
FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)


class DashboardError(Exception):
    """A build that cannot proceed, with what to do about it."""


def site_dir(settings: Settings) -> Path:
    return settings.data_dir / "dashboard"


def pages() -> list[tuple[str, str]]:
    """(slug, path) of every page in navigation order: NAV_TITLES', then any other by name."""
    order = list(NAV_TITLES)
    slugs = sorted(
        (p.stem for p in PAGES_DIR.glob("*.md")),
        key=lambda s: (order.index(s) if s in order else len(order), s),
    )
    return [(s, "/" if s == "index" else f"/{s}/") for s in slugs]


@dataclass
class Result:
    """A query's rows; `result.column` is the first row's value, for headline numbers."""

    name: str
    columns: list[str]
    rows: list[tuple]

    def __len__(self) -> int:
        return len(self.rows)

    def __getattr__(self, column: str):
        if column.startswith("_") or column not in self.columns:
            raise AttributeError(f"query {self.name} has no column {column}")
        return self.rows[0][self.columns.index(column)] if self.rows else None

    def column(self, name: str) -> list:
        return [row[self.columns.index(name)] for row in self.rows]


def records(data: Result) -> list[dict]:
    """The rows as dicts, for a page that lays each row out itself (a persona's card)."""
    return [dict(zip(data.columns, row, strict=True)) for row in data.rows]


def where(data: Result, column: str, value) -> Result:
    """The rows of `data` whose `column` equals `value`: one chart per metric, say."""
    index = data.columns.index(column)
    return Result(data.name, data.columns, [r for r in data.rows if r[index] == value])


def fmt(value, style: str = "auto") -> str:
    """Numbers as a reader expects them: 2,759; 12.5%; 1,234.50; dates as 2026-10-22."""
    if value is None:
        return "–"
    if isinstance(value, dt.datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
        return str(value)
    if style == "auto":
        style = "num0" if isinstance(value, int) else "num2"
    if style.startswith("pct"):
        return f"{float(value) * 100:,.{int(style[3:] or 0)}f}%"
    return f"{float(value):,.{int(style[3:] or 0)}f}"


# ---- charts: matplotlib, drawn as SVG with text kept as text -------------------------------


def _figure(width: float = 8.0, height: float = 3.6):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "svg.fonttype": "none",
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
        }
    )
    return plt.subplots(figsize=(width, height))


PALETTE = ["#236aa4", "#f4b548", "#45a1bf", "#8f3d56", "#85c7c6", "#d2c6ac", "#46a485"]


def _svg(fig, kind: str, title: str, points: int) -> Markup:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    return Markup(
        f'<figure class="chart" data-chart="{kind}" data-points="{points}">'
        f"<figcaption>{html.escape(title)}</figcaption>{_one_line(svg)}</figure>"
    )


def _one_line(text: str) -> str:
    """Markdown ends a raw HTML block at a blank line: keep the SVG in one block."""
    return re.sub(r"\n\s*\n", "\n", text)


def _empty(kind: str, title: str) -> Markup:
    return Markup(
        f'<figure class="chart empty" data-chart="{kind}" data-points="0">'
        f"<figcaption>{html.escape(title)}</figcaption><p>No data.</p></figure>"
    )


def _series(data: Result, x: str, y: str, series: str | None):
    """{series name: (xs, ys)} in the query's order."""
    groups: dict[str, tuple[list, list]] = {}
    for row in data.rows:
        values = dict(zip(data.columns, row, strict=True))
        key = str(values[series]) if series else y
        xs, ys = groups.setdefault(key, ([], []))
        xs.append(values[x])
        ys.append(float(values[y] or 0))
    return groups


def _axis_format(ax, axis: str, style: str | None) -> None:
    if style:
        from matplotlib.ticker import FuncFormatter

        formatter = FuncFormatter(lambda v, _: fmt(v, style))
        (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(formatter)


def bar(data, x, y, title, series=None, horizontal=False, fmt_y=None, stacked=True):
    if not data:
        return _empty("bar", title)
    groups = _series(data, x, y, series)
    labels = list(dict.fromkeys(str(v) for xs, _ in groups.values() for v in xs))
    fig, ax = _figure(height=max(3.0, 0.32 * len(labels) + 1) if horizontal else 3.6)
    base = [0.0] * len(labels)
    width = 0.8 if stacked or len(groups) == 1 else 0.8 / len(groups)
    for i, (name, (xs, ys)) in enumerate(groups.items()):
        heights = [0.0] * len(labels)
        for label, value in zip(xs, ys, strict=True):
            heights[labels.index(str(label))] += value
        positions = [
            p + (0 if stacked or len(groups) == 1 else (i - (len(groups) - 1) / 2) * width)
            for p in range(len(labels))
        ]
        draw = ax.barh if horizontal else ax.bar
        offset = {"left": base} if horizontal else {"bottom": base}
        draw(
            positions, heights, width, label=name if series else None, **(offset if stacked else {})
        )
        if stacked:
            base = [b + h for b, h in zip(base, heights, strict=True)]
    if horizontal:
        ax.set_yticks(range(len(labels)), labels)
        ax.invert_yaxis()
        _axis_format(ax, "x", fmt_y)
    else:
        ax.set_xticks(
            range(len(labels)),
            labels,
            rotation=30 if len(labels) > 6 else 0,
            ha="right" if len(labels) > 6 else "center",
        )
        _axis_format(ax, "y", fmt_y)
    if series:
        ax.legend(frameon=False, fontsize=8)
    return _svg(fig, "bar", title, len(data))


def line(data, x, y, title, series=None, fmt_y=None):
    if not data:
        return _empty("line", title)
    fig, ax = _figure()
    for name, (xs, ys) in _series(data, x, y, series).items():
        ax.plot(xs, ys, marker="o", markersize=3, label=name)
    _axis_format(ax, "y", fmt_y)
    if series:
        ax.legend(frameon=False, fontsize=8)
    fig.autofmt_xdate()
    return _svg(fig, "line", title, len(data))


def heatmap(data, x, y, value, title):
    if not data:
        return _empty("heatmap", title)
    xs = sorted({str(v) for v in data.column(x)})
    ys = sorted({str(v) for v in data.column(y)}, reverse=True)
    grid = [[0.0] * len(xs) for _ in ys]
    for row in data.rows:
        values = dict(zip(data.columns, row, strict=True))
        grid[ys.index(str(values[y]))][xs.index(str(values[x]))] = float(values[value] or 0)
    fig, ax = _figure(width=6.0, height=4.2)
    image = ax.imshow(grid, cmap="Blues", aspect="auto")
    ax.set_xticks(range(len(xs)), xs)
    ax.set_yticks(range(len(ys)), ys)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    top = max(max(r) for r in grid) or 1
    for i, row in enumerate(grid):
        for j, cell in enumerate(row):
            color = "white" if cell > top / 2 else "black"
            ax.text(j, i, f"{cell:,.0f}", ha="center", va="center", color=color, fontsize=8)
    fig.colorbar(image, ax=ax)
    return _svg(fig, "heatmap", title, len(data))


def interval(data, label, mid, low, high, title, fmt_x="pct1"):
    """Estimates with their confidence intervals, one row each, and the zero line."""
    if not data:
        return _empty("interval", title)
    labels = [str(v) for v in data.column(label)]
    mids = [float(v or 0) for v in data.column(mid)]
    lows = [float(v) if v is not None else m for v, m in zip(data.column(low), mids, strict=True)]
    highs = [float(v) if v is not None else m for v, m in zip(data.column(high), mids, strict=True)]
    fig, ax = _figure(height=max(3.0, 0.28 * len(labels) + 1))
    positions = range(len(labels))
    ax.hlines(positions, lows, highs, color=PALETTE[2], linewidth=3, alpha=0.6)
    ax.plot(mids, positions, "o", color=PALETTE[0], markersize=4)
    ax.axvline(0, color="#666", linewidth=0.8)
    ax.set_yticks(list(positions), labels)
    ax.invert_yaxis()
    _axis_format(ax, "x", fmt_x)
    return _svg(fig, "interval", title, len(data))


def histogram(data, x, title, bins=20, fmt_x=None):
    values = [float(v) for v in data.column(x) if v is not None] if data else []
    if not values:
        return _empty("histogram", title)
    fig, ax = _figure()
    ax.hist(values, bins=bins, color=PALETTE[0])
    _axis_format(ax, "x", fmt_x)
    return _svg(fig, "histogram", title, len(values))


# ---- text: headline numbers, big values, tables ---------------------------------------------


def value(data: Result, column: str, style: str = "auto") -> Markup:
    return Markup(f'<span class="value">{html.escape(fmt(getattr(data, column), style))}</span>')


def big_value(data: Result, column: str, title: str, style: str = "auto") -> Markup:
    shown = html.escape(fmt(getattr(data, column), style))
    return Markup(
        f'<div class="big-value"><p class="title">{html.escape(title)}</p>'
        f'<p class="number" data-column="{html.escape(column)}">{shown}</p></div>'
    )


def table(data: Result, columns=None, formats=None, links=None, limit: int = 200) -> Markup:
    """`links`: {column: url prefix}, e.g. a customer key to its lookup."""
    columns = columns or data.columns
    formats = formats or {}
    links = links or {}
    index = [data.columns.index(c) for c in columns]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"num" if isinstance(row[i], int | float | decimal.Decimal) else ""}">'
            f"{_cell(row[i], formats.get(c, 'auto'), links.get(c))}</td>"
            for i, c in zip(index, columns, strict=True)
        )
        + "</tr>"
        for row in data.rows[:limit]
    )
    more = (
        f'<p class="more">{len(data) - limit:,} more rows not shown</p>'
        if len(data) > limit
        else ""
    )
    return Markup(
        f'<div class="table" data-rows="{len(data)}"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>{more}</div>"
    )


def _cell(value, style: str, link: str | None) -> str:
    text = html.escape(fmt(value, style))
    if link and value is not None:
        href = html.escape(link + urllib.parse.quote(str(value)))
        return f'<a href="{href}">{text}</a>'
    return text


HELPERS = {
    "bar": bar,
    "line": line,
    "heatmap": heatmap,
    "interval": interval,
    "histogram": histogram,
    "value": value,
    "big_value": big_value,
    "table": table,
    "fmt": fmt,
    "where": where,
    "records": records,
}


# ---- pages ----------------------------------------------------------------------------------


def render_page(con: duckdb.DuckDBPyConnection, slug: str, params: dict | None = None) -> str:
    """One page as HTML: its SQL run on `con`, its Markdown and helpers rendered."""
    path = PAGES_DIR / f"{slug}.md"
    text = path.read_text()
    front = FRONT_MATTER.match(text)
    meta = yaml.safe_load(front.group(1)) if front else {}
    body = text[front.end() :] if front else text
    params = params or {}
    results: dict[str, Result] = {}
    for name, sql in SQL_BLOCK.findall(body):
        wanted = {k: v for k, v in params.items() if f"${k}" in sql}
        try:
            cursor = con.execute(sql, wanted)
            results[name] = Result(name, [d[0] for d in cursor.description], cursor.fetchall())
        except duckdb.CatalogException as exc:
            raise DashboardError(
                f"{path.relative_to(REPO_ROOT)}, query {name}: {exc}\n(marts published by an "
                "older version lack this table or column: `cdp run` publishes them anew)"
            ) from exc
        except duckdb.Error as exc:
            raise DashboardError(f"{path.relative_to(REPO_ROOT)}, query {name}: {exc}") from exc
    body = SQL_BLOCK.sub(lambda m: _sql_details(m.group(1), m.group(2)), body)
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    try:
        rendered = environment.from_string(body).render(**HELPERS, **results, **params)
    except jinja2.TemplateError as exc:
        raise DashboardError(f"{path.relative_to(REPO_ROOT)}: {exc}") from exc
    content = markdown.markdown(rendered, extensions=["tables", "md_in_html"])
    return _layout(meta.get("title", slug), slug, content)


def _sql_details(name: str, sql: str) -> str:
    """The query under the page, for whoever wants to check a number or reuse it."""
    return (
        f'<details class="sql"><summary>SQL: {name}</summary>'
        f"<pre>{html.escape(sql.strip())}</pre></details>\n\n"
    )


def _layout(title: str, slug: str, content: str) -> str:
    nav = "".join(
        f'<a href="{href}"{" class=current" if page == slug else ""}>'
        f"{html.escape(NAV_TITLES.get(page, page))}</a>"
        for page, href in pages()
    )
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8><link rel=icon href='data:,'>"
        f"<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)} · cdp</title><style>{CSS}</style></head>"
        f"<body><nav><strong>cdp</strong>{nav}</nav><main><h1>{html.escape(title)}</h1>"
        f"{content}</main></body></html>\n"
    )


NAV_TITLES = {
    "index": "Overview",
    "segments": "Segments",
    "campaigns": "Campaigns",
    "predictions": "Predictions",
    "quality": "Data quality",
    "lookup": "Customer lookup",
}

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1f2937}
nav{display:flex;gap:1.2rem;align-items:center;padding:.8rem 2rem;border-bottom:1px solid #e5e7eb}
nav a{color:#374151;text-decoration:none}nav a.current{color:#236aa4;font-weight:600}
main{max-width:1000px;margin:0 auto;padding:1rem 2rem 4rem}
h1{font-size:1.7rem}h2{margin-top:2.2rem;border-bottom:1px solid #e5e7eb;padding-bottom:.3rem}
.headline .number{font-size:3rem;font-weight:700;margin:.2rem 0}
.headline .title,.big-value .title{color:#6b7280;font-size:.85rem;margin:0}
.big-value{display:inline-block;margin:0 2.5rem 1rem 0;vertical-align:top}
.big-value .number{font-size:1.5rem;font-weight:600;margin:.2rem 0}
figure.chart{margin:1.2rem 0}figure.chart svg{max-width:100%;height:auto}
figcaption{font-weight:600;font-size:.95rem;margin-bottom:.3rem}
.table{overflow-x:auto;margin:1rem 0}table{border-collapse:collapse;font-size:.85rem}
th,td{padding:.3rem .6rem;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top}
td{max-width:34rem}td.num{text-align:right;font-variant-numeric:tabular-nums}
details.sql{margin:.3rem 0;font-size:.8rem;color:#6b7280}
details.sql pre{background:#f9fafb;padding:.6rem;overflow-x:auto}
.personas{display:grid;grid-template-columns:repeat(auto-fill,minmax(290px,1fr));gap:1rem}
.persona{border:1px solid #e5e7eb;border-radius:6px;padding:.7rem 1rem;font-size:.85rem}
.persona h4{margin:0 0 .3rem;font-size:1rem}.persona .stats{color:#236aa4;font-weight:600}
form input{font-size:1rem;padding:.4rem;width:24rem}form button{font-size:1rem;padding:.4rem .8rem}
"""


@contextlib.contextmanager
def _marts(settings: Settings):
    if not settings.marts_path.exists():
        raise DashboardError(
            f"no published marts at {settings.marts_path}: run `cdp run` first (with the same "
            "CDP_DATA_DIR), which publishes them once its checks pass"
        )
    con = duckdb.connect(str(settings.marts_path), read_only=True)
    try:
        yield con
    finally:
        con.close()


def build(settings: Settings) -> tuple[Path, dict[str, float]]:
    """Every page into a new folder that then replaces `$CDP_DATA_DIR/dashboard/`."""
    target = site_dir(settings)
    staging = target.with_name(target.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    seconds = {}
    with _marts(settings) as con:
        for slug, href in pages():
            started = time.perf_counter()
            page = staging / href.strip("/") / "index.html"
            page.parent.mkdir(parents=True, exist_ok=True)
            page.write_text(render_page(con, slug, {"q": ""} if slug == LIVE_PAGE else None))
            seconds[slug] = time.perf_counter() - started
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target, seconds


class _Handler(http.server.SimpleHTTPRequestHandler):
    settings: Settings

    def do_GET(self):  # noqa: N802 - the base class's name
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path.rstrip("/") == f"/{LIVE_PAGE}" and query.get("q", [""])[0].strip():
            return self._lookup(query["q"][0].strip())
        return super().do_GET()

    def _lookup(self, q: str) -> None:
        try:
            with _marts(self.settings) as con:
                body = render_page(con, LIVE_PAGE, {"q": q}).encode()
            status = 200
        except DashboardError as exc:
            body, status = html.escape(str(exc)).encode(), 500
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        sys.stderr.write("  " + format % args + "\n")


def serve(settings: Settings, port: int) -> None:
    """Serve the built site, and the lookup, on 127.0.0.1 until interrupted."""
    root = site_dir(settings)
    if not (root / "index.html").exists():
        raise DashboardError(f"no dashboard built in {root}: run `cdp dashboard build` first")
    handler = type("Handler", (_Handler,), {"settings": settings})
    with http.server.ThreadingHTTPServer(
        ("127.0.0.1", port), lambda *a: handler(*a, directory=str(root))
    ) as server:
        print(f"cdp: the dashboard on http://127.0.0.1:{port}/ (Ctrl+C stops it)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
