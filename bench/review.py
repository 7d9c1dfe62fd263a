"""The review log at scale: a million encounters, listed, exported and verified.

Seeds ROWS encounters (one agent each, with its search digests, and the chain entries of the
encounter and its agent, as the desk's saves leave them) into a SQLite file with SQLAlchemy
Core bulk inserts, once: the file is cached under bench/.cache, named by the row count, the
schema's migration head and the seed's version, and reused by later runs. Then, on that
file:

* list: the review log's pages (/review/ as a signed-in reviewer, through the app's own
  request handling in this process): the first page, each filter on its own, a school with
  a date range, and pages deep in the history reached by the page key (`after`). The floor is
  the same page's query (kiosk.review.log's filters, order and limit) run directly through
  SQLAlchemy Core on the same file, in the same run;
* search: the log's word search (POST /review/search, as the page posts it) for words and
  word beginnings of the agencies, alone and beside a filter, over the search digests the
  app keeps (seeded as the desk's saves would write them);
* csv: the whole log as /review/export.csv, read to its end, in a child process whose peak
  RSS is reported; the same for a tenth of the rows, to show the memory stays flat;
* verify: `audit.verify` over the whole chain.

Prints one JSON line on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import re
import resource
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

try:
    from bench.harness import BenchError, logger, percentile
except ModuleNotFoundError:  # run as `python bench/review.py`
    from harness import BenchError, logger, percentile  # type: ignore[no-redef]

from sqlalchemy import create_engine, insert, select, text, update  # noqa: E402

from kiosk import audit, create_app, migrate, vocabulary  # noqa: E402
from kiosk.models import (  # noqa: E402
    Agent,
    AuditEntry,
    AuditHead,
    Encounter,
    School,
    SearchTerm,
)
from kiosk.protocol import search  # noqa: E402
from kiosk.protocol.events import canonical_json  # noqa: E402
from kiosk.review import log  # noqa: E402
from kiosk.webdb import database  # noqa: E402

say = logger("review")
CACHE = ROOT / "bench" / ".cache"
REVIEWER = "reviewer@bench.test"
REVIEWER_PASSWORD = "bench reviewer words 2026"  # noqa: S105 - a throwaway bench account
# Fixed keys for the cached file (the bench's own throwaway instance, never a district's).
KEYS = {
    "SECRET_KEY": "bench-review-secret",
    "ENCRYPTION_KEY": "bench-review-encryption",
    "AUDIT_KEY": "bench-review-audit",
    "INDEX_KEY": "bench-review-index",
}
TARGETS = {"list_p95_ms": 150, "search_p95_ms": 150, "csv_rows_per_s": 50_000}
SCHOOLS = 40
# Named in the cached file's name: a change to what is seeded seeds a new file.
SEED_VERSION = "v3"
AGENCIES = (
    ("ice_ero", "U.S. Immigration and Customs Enforcement"),
    ("cbp", "U.S. Customs and Border Protection"),
    ("fbi", "Federal Bureau of Investigation"),
    ("usms", "U.S. Marshals Service"),
    ("hsi", "Homeland Security Investigations"),
)
DOCUMENTS = (
    "judicial_warrant",
    "administrative_warrant",
    "dhs_subpoena",
    "judicial_subpoena",
    "detainer",
    "none",
    None,
)
OUTCOMES = ("left", "waited", "designee_took_over", "entered_without_consent", None)
CHANNELS = ("in_person", "in_person", "in_person", "phone")
KINDS = ("student_info", "student_access", "student_access,student_info", "staff", "entry")
FIRST_DAY = datetime(2021, 1, 4, 13, 0, tzinfo=UTC)


def settings(path: Path) -> dict[str, Any]:
    return {
        "DEMO": True,
        "DATABASE_URL": f"sqlite:///{path}",
        **KEYS,
        "PASSWORD_TIME_COST": 1,
        "PASSWORD_MEMORY_KIB": 8,
        "PASSWORD_PARALLELISM": 1,
        "DELIVERY": "off",
        "BASE_URL": "http://127.0.0.1",
        "SMTP_HOST": "",
        "LOG_LEVEL": "WARNING",
    }


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    return "-".join(sorted(ScriptDirectory.from_config(config).get_heads()))


def make_app(path: Path) -> Any:
    os.environ["KIOSK_INSTANCE_PATH"] = str(path.parent / "instance")
    app = create_app(settings(path))
    app.config["TESTING"] = True
    return app


# --- seeding -------------------------------------------------------------------------------


def seed(path: Path, rows: int) -> None:
    """Migrate a new file and fill it; written to a temporary name, renamed when complete."""
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    url = f"sqlite:///{partial}"
    migrate.upgrade(url)
    app = make_app(partial)
    runner = app.test_cli_runner()
    started = time.perf_counter()
    school_ids = seed_schools(url)
    result = runner.invoke(
        args=["users", "create", "--email", REVIEWER, "--name", "Bench Reviewer"]
        + ["--role", "reviewer"],
        env={"KIOSK_NEW_PASSWORD": REVIEWER_PASSWORD},
    )
    if result.exit_code != 0:
        raise BenchError(f"users create: {result.output}")
    database(app).engine.dispose()
    seed_encounters(url, rows, school_ids)
    say(f"seeded {rows} encounters in {time.perf_counter() - started:.0f}s")
    started = time.perf_counter()
    terms = seed_search_terms(url, rows)
    say(f"seeded {terms} search digests in {time.perf_counter() - started:.0f}s")
    started = time.perf_counter()
    entries = seed_chain(url)
    say(f"seeded {entries} audit entries in {time.perf_counter() - started:.0f}s")
    engine = create_engine(url)
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
        # One self-contained file (no -wal beside it) before it takes its final name.
        connection.exec_driver_sql("PRAGMA journal_mode=DELETE")
    engine.dispose()
    partial.rename(path)


def seed_schools(url: str) -> list[int]:
    engine = create_engine(url)
    with engine.begin() as connection:
        for number in range(SCHOOLS):
            connection.execute(
                insert(School).values(
                    name=f"Bench School {number:02d}",
                    timezone="America/Los_Angeles",
                    public_id=f"benchschool{number:02d}",
                )
            )
        ids = list(connection.scalars(select(School.id).order_by(School.id)))
    engine.dispose()
    return ids


def seed_encounters(url: str, rows: int, school_ids: list[int]) -> None:
    """Encounters spread over about six years, oldest first, with one agent each."""
    engine = create_engine(url)
    chance = random.Random(20261201)  # noqa: S311 - varied test data, not security
    span = timedelta(days=6 * 365).total_seconds()
    batch = 20_000
    done = 0
    with engine.begin() as connection:
        connection.exec_driver_sql("PRAGMA synchronous=OFF")
    while done < rows:
        count = min(batch, rows - done)
        encounters: list[dict[str, Any]] = []
        agents: list[dict[str, Any]] = []
        for offset in range(count):
            number = done + offset + 1
            started = FIRST_DAY + timedelta(seconds=span * number / rows)
            document = chance.choice(DOCUMENTS)
            resolved = number < rows - 50 or chance.random() < 0.5
            pick, agency = chance.choice(AGENCIES)
            encounters.append(
                {
                    "id": number,
                    "public_id": f"b{number:015d}",
                    "school_id": chance.choice(school_ids),
                    "channel": chance.choice(CHANNELS),
                    "started_at": started,
                    "status": "resolved" if resolved else "open",
                    "resolved_at": started + timedelta(minutes=40) if resolved else None,
                    "request_kinds": chance.choice(KINDS),
                    "doc_first_impression": document,
                    "doc_confirmed_type": document if chance.random() < 0.6 else None,
                    "exigency": chance.random() < 0.03,
                    "outcome": chance.choice(OUTCOMES) if resolved else None,
                    "first_alert_sent_at": started + timedelta(seconds=2),
                    "first_acknowledged_at": started + timedelta(seconds=chance.randint(20, 900)),
                    "acknowledged_late": chance.random() < 0.1,
                    "event_count": 6,
                    "escalation_level": 1,
                    "realerts": 0,
                    "entered_without_consent": False,
                    "followup_sent": True,
                }
            )
            agents.append(
                {
                    "encounter_id": number,
                    "position": 1,
                    "agency_pick": pick,
                    "agency_printed": agency,
                    "card_kept": False,
                    "created_at": started,
                }
            )
        with engine.begin() as connection:
            connection.execute(insert(Encounter.__table__), encounters)
            connection.execute(insert(Agent.__table__), agents)
        done += count
        if done % 200_000 == 0 or done == rows:
            say(f"  {done} encounters")
    engine.dispose()


def agency_digests(pick: str, agency: str) -> list[str]:
    """The digests the app keeps for an agent's agency (kiosk.protocol.search): the words
    and word beginnings of the agency as printed and as picked."""
    label = dict(vocabulary.AGENCIES).get(pick, pick)
    return sorted(search.digests_of(KEYS["INDEX_KEY"], [agency, label]))


def seed_search_terms(url: str, rows: int) -> int:
    """Each encounter's search digests, as the desk's save of its agent would write them."""
    engine = create_engine(url)
    by_pick = {pick: agency_digests(pick, agency) for pick, agency in AGENCIES}
    table = SearchTerm.__table__
    total = 0
    batch = 10_000
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA synchronous=OFF")
        for start in range(0, rows, batch):
            agents = connection.execute(
                select(Agent.encounter_id, Agent.agency_pick)
                .where(Agent.encounter_id > start, Agent.encounter_id <= start + batch)
                .order_by(Agent.encounter_id)
            ).all()
            terms = [
                {"encounter_id": encounter_id, "digest": digest}
                for encounter_id, pick in agents
                for digest in by_pick[pick]
            ]
            connection.execute(insert(table), terms)
            connection.commit()
            total += len(terms)
    engine.dispose()
    return total


def seed_chain(url: str) -> int:
    """The chain the desk's saves would have left: one `record.insert` entry per encounter
    row and per agent row, with the row's digest, each hashed with the audit key over the
    one before."""
    key = KEYS["AUDIT_KEY"]
    engine = create_engine(url)
    with engine.connect() as connection:
        last = connection.execute(
            select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
        ).first()
    seq, prev = (last[0], last[1]) if last else (0, audit.GENESIS)
    first = seq
    batch: list[dict[str, Any]] = []

    def write() -> None:
        with engine.begin() as writer:
            writer.execute(insert(AuditEntry.__table__), batch)
        batch.clear()

    for table, moment in ((Encounter.__table__, "started_at"), (Agent.__table__, "created_at")):
        with engine.connect() as connection:
            rows = connection.execution_options(stream_results=True, yield_per=20_000).execute(
                audit.content_query(table)
            )
            for row in rows:
                seq += 1
                fingerprint = audit.key_fingerprint(key) if seq == 1 else None
                at = getattr(row, moment).replace(microsecond=0)
                subject = f"{table.name}:{row.id}"
                details = canonical_json(
                    {"table": table.name, "row": row.id, "digest": audit.row_digest(row)}
                )
                digest = audit.entry_hash(
                    key, prev, seq, at, "record", "record.insert", subject, details, fingerprint
                )
                batch.append(
                    {
                        "seq": seq,
                        "at": at,
                        "actor": "record",
                        "action": "record.insert",
                        "subject": subject,
                        "details": details,
                        "prev_hash": prev,
                        "hash": digest,
                        "key_fingerprint": fingerprint,
                    }
                )
                prev = digest
                if len(batch) == 50_000:
                    write()
    if batch:
        write()
    # The head row moves on with the chain, as every append moves it.
    head = AuditHead.__table__
    with engine.begin() as connection:
        connection.execute(
            update(head).where(head.c.id == audit.HEAD_ID).values(seq=seq, hash=prev)
        )
    engine.dispose()
    return seq - first


def cached_file(rows: int, cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"review-{rows}-{head_revision()}-{SEED_VERSION}.db"
    if path.exists():
        say(f"using cached {path.name}")
        return path
    say(f"seeding {rows} encounters into {path.name} (cached for later runs)")
    seed(path, rows)
    return path


# --- measuring -----------------------------------------------------------------------------


def signed_in(app: Any) -> Any:
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    if token is None:
        raise BenchError("no CSRF token on the sign-in page")
    response = client.post(
        "/login",
        data={"csrf_token": token.group(1), "email": REVIEWER, "password": REVIEWER_PASSWORD},
    )
    if response.status_code != 302:
        raise BenchError(f"sign-in answered {response.status_code}")
    return client


def list_queries(app: Any, path: Path, samples: int) -> list[dict[str, str]]:
    """The pages a reviewer opens: filters one at a time, a school and dates, deep pages."""
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        schools = list(connection.execute(select(School.public_id, School.id)))
        newest, oldest = connection.execute(
            text("SELECT max(started_at), min(started_at) FROM encounters")
        ).one()
    engine.dispose()
    chance = random.Random(7)  # noqa: S311 - which pages to open, not security
    newest_day = date.fromisoformat(str(newest)[:10])
    oldest_day = date.fromisoformat(str(oldest)[:10])
    days = (newest_day - oldest_day).days
    fixed: list[dict[str, str]] = [
        {},
        {"state": "ended"},
        {"state": "open"},
        {"channel": "phone"},
        {"document": "judicial_warrant"},
        {"exigency": "yes"},
        {"outcome": "entered_without_consent"},
        {"agency": "usms"},
        {"request_kind": "staff"},
        {"late": "yes"},
        {"stood_down": "yes"},
    ]
    queries = list(fixed)
    while len(queries) < samples:
        school = chance.choice(schools)[0]
        start = oldest_day + timedelta(days=chance.randint(0, days))
        kind = len(queries) % 3
        if kind == 0:
            queries.append({"school": school})
        elif kind == 1:
            queries.append(
                {
                    "school": school,
                    "date_from": start.isoformat(),
                    "date_to": (start + timedelta(days=90)).isoformat(),
                }
            )
        else:
            moment = datetime.combine(start, datetime.min.time(), tzinfo=UTC)
            queries.append({"after": f"{moment.isoformat()}|{10**9}"})
    return queries[:samples]


def cursor_value(raw: str) -> str:
    from kiosk.review.forms import make_cursor

    moment, row_id = raw.split("|")
    return make_cursor(datetime.fromisoformat(moment), int(row_id))


def as_params(query: dict[str, str]) -> dict[str, str]:
    params = dict(query)
    if "after" in params:
        params["after"] = cursor_value(params["after"])
    return params


def floor_filters(query: dict[str, str], school_ids: dict[str, int]) -> log.Filters:
    after = None
    if "after" in query:
        moment, row_id = query["after"].split("|")
        after = (datetime.fromisoformat(moment), int(row_id))
    return log.Filters(
        school_id=school_ids[query["school"]] if "school" in query else None,
        date_from=date.fromisoformat(query["date_from"]) if "date_from" in query else None,
        date_to=date.fromisoformat(query["date_to"]) if "date_to" in query else None,
        state=query.get("state", ""),
        channel=query.get("channel", ""),
        document=query.get("document", ""),
        exigency=query.get("exigency", ""),
        outcome=query.get("outcome", ""),
        stood_down=query.get("stood_down", ""),
        late=query.get("late", ""),
        agency=query.get("agency", ""),
        request_kind=query.get("request_kind", ""),
        after=after,
    )


def floor_query(filters: log.Filters) -> Any:
    """The page's query, written in Core: the same filters, join, order and limit."""
    table = Encounter.__table__
    query = select(table, School.__table__.c.name).join(
        School.__table__, School.__table__.c.id == table.c.school_id
    )
    query = log.narrowed(query, filters)
    if filters.after is not None:
        query = query.where(log.older_than(filters.after))
    return query.order_by(table.c.started_at.desc(), table.c.id.desc()).limit(log.PAGE_SIZE + 1)


def measure_list(app: Any, path: Path, samples: int) -> dict[str, Any]:
    client = signed_in(app)
    queries = list_queries(app, path, samples)
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        school_ids = dict(connection.execute(select(School.public_id, School.id)).all())
    for query in queries[:3]:  # warm the caches once, as a running server would be
        client.get("/review/", query_string=as_params(query))
    page_times: list[float] = []
    floor_times: list[float] = []
    for query in queries:
        started = time.perf_counter()
        response = client.get("/review/", query_string=as_params(query))
        page_times.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise BenchError(f"/review/ {query} answered {response.status_code}")
        filters = floor_filters(query, school_ids)
        started = time.perf_counter()
        with engine.connect() as connection:
            connection.execute(floor_query(filters)).all()
        floor_times.append(time.perf_counter() - started)
    engine.dispose()
    slowest = sorted(zip(page_times, floor_times, queries, strict=True), key=lambda t: -t[0])[:5]
    for page_s, floor_s, query in slowest:
        say(f"  page {page_s * 1000:.0f} ms, floor {floor_s * 1000:.0f} ms: {query}")
    search = measure_search(client, samples)
    return {
        "list_p95_ms": round(percentile(page_times, 95) * 1000, 1),
        "floor_list_p95_ms": round(percentile(floor_times, 95) * 1000, 1),
        **search,
    }


SEARCHES = ("marshals", "customs", "immig*", "federal bureau", "homeland*", "border patrol")


def measure_search(client: Any, samples: int) -> dict[str, Any]:
    """The log's word search (POST /review/search), alone and beside a filter."""
    page = client.get("/review/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    if token is None:
        raise BenchError("no CSRF token on the review log")
    times: list[float] = []
    for number in range(samples):
        form = {"csrf_token": token.group(1), "words": SEARCHES[number % len(SEARCHES)]}
        if number % 3 == 2:
            form["state"] = "ended"
        started = time.perf_counter()
        response = client.post("/review/search", data=form)
        times.append(time.perf_counter() - started)
        if response.status_code != 200 or 'data-id="' not in response.get_data(as_text=True):
            raise BenchError(f"search {form['words']!r} answered {response.status_code}, no rows")
    return {"search_p95_ms": round(percentile(times, 95) * 1000, 1)}


def export_in_child(path: str, query: dict[str, str], out: Any) -> None:
    """Read /review/export.csv to its end; send back rows, seconds and peak RSS."""
    app = make_app(Path(path))
    client = signed_in(app)
    started = time.perf_counter()
    response = client.get("/review/export.csv", query_string=query, buffered=False)
    lines = 0
    for chunk in response.response:
        lines += chunk.count(b"\n") if isinstance(chunk, bytes) else chunk.count("\n")
    elapsed = time.perf_counter() - started
    response.close()
    out.send({"rows": lines - 1, "seconds": elapsed, "peak_mb": peak_rss_kib() / 1024})


def peak_rss_kib() -> int:
    """This process's own peak resident memory. Linux carries ru_maxrss over from the parent
    through fork and exec, so a child started by a large parent would report the parent's;
    VmHWM belongs to the process's own memory, begun at exec."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure_export(path: Path, query: dict[str, str]) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=export_in_child, args=(str(path), query, send))
    child.start()
    if not receive.poll(1800):
        child.kill()
        raise BenchError("the export did not finish in 30 minutes")
    result: dict[str, Any] = receive.recv()
    child.join()
    return result


def measure_verify(app: Any) -> dict[str, Any]:
    with database(app).session_factory() as session:
        started = time.perf_counter()
        result = audit.verify(session, KEYS["AUDIT_KEY"])
        elapsed = time.perf_counter() - started
    if not result.ok:
        raise BenchError(f"the seeded chain does not verify (entry {result.first_bad_seq})")
    return {"verify_s": round(elapsed, 1), "verified_entries": result.checked}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--quick", action="store_true", help="2,000 rows, a few samples")
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args()
    rows, samples, cache = args.rows, args.samples, args.cache
    scratch = None
    if args.quick:
        rows, samples = 2_000, 12
        scratch = tempfile.TemporaryDirectory(prefix="bench-review-")
        cache = Path(scratch.name)
    try:
        path = cached_file(rows, cache)
        app = make_app(path)
        result: dict[str, Any] = {"bench": "review", "rows": rows}
        result.update(measure_list(app, path, samples))
        whole = measure_export(path, {})
        tenth_day = (FIRST_DAY + timedelta(days=6 * 365 * 0.9)).date().isoformat()
        tenth = measure_export(path, {"date_from": tenth_day})
        if whole["rows"] != rows:
            raise BenchError(f"the export held {whole['rows']} rows, not {rows}")
        result["csv_rows_per_s"] = round(whole["rows"] / whole["seconds"])
        result["csv_peak_rss_mb"] = round(whole["peak_mb"], 1)
        result["csv_tenth_rows"] = tenth["rows"]
        result["csv_tenth_peak_rss_mb"] = round(tenth["peak_mb"], 1)
        result.update(measure_verify(app))
        result["targets"] = {**TARGETS, "csv_peak_rss_mb": 200, "verify_s": 120}
    except BenchError as error:
        print(json.dumps({"bench": "review", "error": str(error)}), flush=True)
        return 1
    finally:
        if scratch is not None:
            scratch.cleanup()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
