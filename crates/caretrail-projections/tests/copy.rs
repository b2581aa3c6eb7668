//! A large upsert on PostgreSQL goes through `COPY` into a staging table and one set-based
//! `INSERT ... SELECT ... ON CONFLICT` (the rebuild's bulk path); it must write exactly what the
//! multi-row `VALUES` statements of small upserts write: text that needs escaping in `COPY`'s
//! format, NULLs, and additive conflicts with money carried between its two columns. On SQLite
//! both sides take the `VALUES` path, which pins the chunking alone.

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

use caretrail_projections::model::{self, GiftMonthRow, Indexes, ModelWorkerRow};
use caretrail_projections::sql::{self, FEN_SPLIT, ReadModelDb, Row};
use caretrail_store::testing::Harness;
use uuid::Uuid;

caretrail_store::both_backends!(a_large_upsert_writes_exactly_what_small_ones_write);

/// Text that `COPY`'s text format must escape, or that looks like its escapes.
const TEXTS: [&str; 9] = [
    "plain",
    "tab\there",
    "line\nbreak",
    "carriage\rreturn",
    "back\\slash",
    "\\N",
    "\\.",
    "汉字 text",
    "",
];

fn workers() -> Vec<ModelWorkerRow> {
    (0..1_500usize)
        .map(|i| ModelWorkerRow {
            id: Uuid::from_u128(i as u128 + 1),
            honour: TEXTS[i % TEXTS.len()].into(),
            region_code: format!("3301{:02}", i % 7),
            county_code: TEXTS[(i / 3) % TEXTS.len()].into(),
            city_code: (i % 4 != 0).then(|| TEXTS[(i / 5) % TEXTS.len()].to_owned()),
            name_sealed: (i % 2 == 0).then(|| format!("{{\"n\":\"a\\tb {i}\"}}")),
            visits: i as i64 * 1_000_003,
            open_issues: -(i as i64),
            in_hardship: i % 3 == 0,
            ..Default::default()
        })
        .collect()
}

fn months(round: i64) -> Vec<GiftMonthRow> {
    (0..1_200usize)
        .map(|i| GiftMonthRow {
            month: format!("20{:02}-{:02}", 10 + i / 100, 1 + i % 12),
            county_code: format!("{}{}", TEXTS[i % TEXTS.len()], i / 12),
            city_code: TEXTS[(i + 1) % TEXTS.len()].into(),
            visits: round,
            // Low parts near the split, so adding a second round carries into the high part.
            cash_fen_hi: i as i64,
            cash_fen_lo: FEN_SPLIT - 1 - i as i64,
            goods_fen_hi: round,
            goods_fen_lo: FEN_SPLIT / 2 + i as i64,
            goods_count: 1,
            flowers_count: i as i64 % 2,
        })
        .collect()
}

async fn a_large_upsert_writes_exactly_what_small_ones_write(h: &Harness) {
    let store = caretrail_store::connect(&h.url, Default::default())
        .await
        .unwrap();
    let db = ReadModelDb::of_store(store.as_ref());
    let mut pc = db.acquire().await.unwrap();
    let mut conn = pc.conn();
    let (large, small) = (901, 902);
    for g in [large, small] {
        model::create_tables(&mut conn, g, Indexes::All)
            .await
            .unwrap();
    }
    // The same rows twice: the second time every row conflicts (replaced, or added to).
    for round in 1..=2 {
        let w = workers();
        let m = months(round);
        sql::upsert(&mut conn, large, &w).await.unwrap();
        sql::upsert(&mut conn, large, &m).await.unwrap();
        for chunk in w.chunks(100) {
            sql::upsert(&mut conn, small, chunk).await.unwrap();
        }
        for chunk in m.chunks(100) {
            sql::upsert(&mut conn, small, chunk).await.unwrap();
        }
    }
    for def in [&ModelWorkerRow::DEF, &GiftMonthRow::DEF] {
        let a = sql::dump(&mut conn, large, def).await.unwrap();
        let b = sql::dump(&mut conn, small, def).await.unwrap();
        assert_eq!(
            a.len(),
            if def.name == "model_workers" {
                1_500
            } else {
                1_200
            }
        );
        assert_eq!(a, b, "{}", def.name);
    }
    // The text came back as it went in.
    let rows = sql::dump(&mut conn, large, &ModelWorkerRow::DEF)
        .await
        .unwrap();
    assert!(rows[1].contains(r#"Text("tab\there")"#), "{}", rows[1]);
}
