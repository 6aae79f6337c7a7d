"""The catalog's reads with 10,000 and 1,000,000 items, straight to estoque: `GET /items?q=`
for a rare, an absent and a common term (and for terms of one and two characters, which
trigrams cannot serve), `GET /items?limit=50` and `GET /items?limit=50&sort=price`.

Items go straight into the database (one INSERT ... SELECT over generate_series, then
ANALYZE), not through the API. Names look like a shop's ("Camiseta azul 4821": ten kinds of
clothing, eight colours, the row's number); one row in 500 of the first 10,000 and one in
49,500 of the rest is a "Luneta de latão", so the rare term matches 20 items, then 40. Each
read is asked one request after another on one keep-alive session, after a warm-up, until
`samples` answers or `seconds` have passed: p50 and p95 in ms. Figures only, never a verdict.

    .venv/bin/python loadtest/catalog_search.py [--samples 40] [--skip-million]

starts estoque alone on a free port (on DATABASE_URL's server, or the embedded one), with a
fresh `estoque_db_catalog` database; `make bench` runs the same step on its own platform.
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

from veloz.data.db import sqlalchemy_url
from veloz.dev.devstack import Platform, free_port, server_url_from_environment

# name: the query string of one read of GET /items.
READS = {
    "rare": "q=luneta&limit=50",
    "absent": "q=xilofone&limit=50",
    "common": "q=camiseta&limit=50",
    "one_char_common": "q=a&limit=50",
    "one_char_absent": "q=x&limit=50",
    "two_chars_rare": "q=lu&limit=50",
    "two_chars_absent": "q=zq&limit=50",
    "two_chars_common": "q=ca&limit=50",
    "limit_50": "limit=50",
    "price_limit_50": "limit=50&sort=price",
}
RARE_EVERY = 500  # of the first 10,000 items; of the rest, one in 49,500: 20 more at 1M

_SEED = text("""
INSERT INTO items (name, quantity, reserved, committed, price, created_at, updated_at)
SELECT CASE WHEN n % (CASE WHEN n <= 10000 THEN CAST(:rare_every AS integer) ELSE 49500 END) = 7
            THEN 'Luneta de latão ' || n
            ELSE (ARRAY['Camiseta', 'Calça', 'Boné', 'Tênis', 'Meia', 'Jaqueta', 'Bermuda',
                        'Vestido', 'Saia', 'Casaco'])[1 + n % 10]
                 || ' ' || (ARRAY['azul', 'verde', 'preto', 'branco', 'vermelho', 'cinza',
                                  'amarelo', 'rosa'])[1 + (n / 10) % 8]
                 || ' ' || n END,
       n % 50, 0, 0, (n % 1000) + 0.99, now(), now()
FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS n
""")


def seed_items(database_url: str, total: int) -> int:
    """Top the items table up to `total` rows (those already there count); returns how many
    were added. Rows are numbered on from the count, so a second call continues the first."""
    engine = create_engine(sqlalchemy_url(database_url))
    with engine.begin() as connection:
        have = connection.execute(text("SELECT count(*) FROM items")).scalar_one()
        if have < total:
            connection.execute(_SEED, {"first": have + 1, "last": total,
                                       "rare_every": RARE_EVERY})
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("VACUUM ANALYZE items"))
    engine.dispose()
    return max(0, total - have)


def timed_reads(session: requests.Session, url: str, samples: int, seconds: float) -> dict:
    """p50/p95 ms of GET `url`, one request after another, after three unmeasured ones;
    stops at `samples` answers or after `seconds`, whichever comes first."""
    for _ in range(3):
        session.get(url, timeout=60).raise_for_status()
    times: list[float] = []
    deadline = time.monotonic() + seconds
    while len(times) < samples and time.monotonic() < deadline:
        started = time.perf_counter()
        answer = session.get(url, timeout=60)
        times.append(time.perf_counter() - started)
        answer.raise_for_status()
    times.sort()
    return {"p50_ms": round(1000 * statistics.median(times), 2),
            "p95_ms": round(1000 * times[int(0.95 * (len(times) - 1))], 2),
            "samples": len(times), "matches": len(answer.json())}


def catalog_cost(platform: Platform, total_items: int, samples: int = 40,
                 seconds: float = 15) -> dict:
    """Every read of READS against estoque once its items table holds `total_items` rows,
    on one keep-alive session warmed up first (a fresh server's first answers are slower)."""
    seed_items(platform.database_urls["estoque-service"], total_items)
    items = f"{platform.url('estoque-service')}/items"
    with requests.Session() as session:
        for _ in range(20):
            session.get(f"{items}?limit=50", timeout=60).raise_for_status()
        return {name: timed_reads(session, f"{items}?{query}", samples, seconds)
                for name, query in READS.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=40, help="answers per read")
    parser.add_argument("--seconds", type=float, default=15, help="at most, per read")
    parser.add_argument("--skip-million", action="store_true", help="10,000 items only")
    args = parser.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="veloz-catalog-"))
    platform = Platform(server_url=server_url_from_environment(), only={"estoque-service"},
                        ports={"estoque-service": free_port()}, database_suffix="_catalog",
                        log_dir=run_dir / "logs", run_dir=run_dir)
    platform.migrate(fresh=True)
    platform.start()
    try:
        results = {"10k": catalog_cost(platform, 10_000, args.samples, args.seconds)}
        if not args.skip_million:
            results["1M"] = catalog_cost(platform, 1_000_000, args.samples, args.seconds)
    finally:
        platform.stop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
