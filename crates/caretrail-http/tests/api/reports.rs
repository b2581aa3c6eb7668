//! The monthly and yearly reports: their figures equal the dashboards' for the same as-of
//! (read back from the workbook with calamine, from the CSV with the csv crate, and from the
//! JSON), bad input answers 400 with stable codes, only dashboard readers get them, and a name
//! that starts like a formula is written inert.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use caretrail_domain::demo;
use caretrail_http::Role;
use caretrail_store::testing::Harness;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::*;

caretrail_store::both_backends!(
    report_totals_equal_the_dashboards_in_json_xlsx_and_csv,
    a_report_as_of_a_log_position_equals_the_replayed_dashboards,
    bad_report_input_answers_400_with_stable_codes,
    a_period_without_data_is_a_report_of_zeros,
    only_dashboard_readers_get_reports,
    formula_injection_a_body_named_like_a_formula_is_written_inert,
);

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

async fn json_of(t: &TestApp, token: &str, path: &str) -> Value {
    let res = t.get(token, path).await;
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    res.json().await.unwrap()
}

async fn bytes_of(t: &TestApp, path: &str, content_type: &str) -> (Vec<u8>, String) {
    let res = t.get(&t.admin, path).await;
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(content_type),
        "{path}"
    );
    let disposition = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    (res.bytes().await.unwrap().to_vec(), disposition)
}

/// A sheet of the workbook as rows of cells.
fn sheet(book: &[u8], name: &str) -> Vec<Vec<Data>> {
    let mut wb: Xlsx<_> = Xlsx::new(Cursor::new(book.to_vec())).unwrap();
    let range = wb.worksheet_range(name).unwrap();
    // No cell of any sheet is a formula.
    let formulas = wb.worksheet_formula(name).unwrap();
    assert!(
        formulas.used_cells().all(|(_, _, f)| f.is_empty()),
        "{name} holds a formula"
    );
    range.rows().map(|r| r.to_vec()).collect()
}

fn sheet_names(book: &[u8]) -> Vec<String> {
    let wb: Xlsx<_> = Xlsx::new(Cursor::new(book.to_vec())).unwrap();
    wb.sheet_names()
}

/// The cell in column `col` of the first row whose first cell is the text `label`, after
/// the row whose first cell is `after` (a table's title), if given.
fn cell_after<'a>(rows: &'a [Vec<Data>], after: Option<&str>, label: &str, col: usize) -> &'a Data {
    let start = after.map_or(0, |title| {
        rows.iter()
            .position(|r| r.first() == Some(&Data::String(title.into())))
            .unwrap_or_else(|| panic!("no table {title}"))
    });
    rows[start..]
        .iter()
        .find(|r| r.first() == Some(&Data::String(label.into())))
        .and_then(|r| r.get(col))
        .unwrap_or_else(|| panic!("no row {label}"))
}

fn number(d: &Data) -> f64 {
    match d {
        Data::Float(f) => *f,
        Data::Int(i) => *i as f64,
        other => panic!("not a number: {other:?}"),
    }
}

/// The CSV as records (the byte-order mark checked and stripped).
fn csv_rows(bytes: &[u8]) -> Vec<Vec<String>> {
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBF"),
        "a UTF-8 byte-order mark"
    );
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(&bytes[3..]);
    r.records()
        .map(|rec| rec.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

fn csv_value<'a>(rows: &'a [Vec<String>], label: &str) -> &'a str {
    rows.iter()
        .find(|r| r.first().map(String::as_str) == Some(label))
        .and_then(|r| r.get(1))
        .unwrap_or_else(|| panic!("no CSV row {label}"))
}

async fn report_totals_equal_the_dashboards_in_json_xlsx_and_csv(h: &Harness) {
    let t = spawn(h).await;
    // October 2021: the article's visits.
    let month = json_of(
        &t,
        &t.admin,
        "/api/v1/reports/monthly?period=2021-10&format=json",
    )
    .await;
    let r = &month["report"];
    assert_eq!(r["as_of"], json!("2021-10-31"), "{r}");
    assert_eq!(r["replayed"], json!(false));
    assert_eq!(r["association"], json!("浙江省劳动模范协会"));
    let ov = json_of(&t, &t.admin, "/api/v1/dashboard/overview?as_of=2021-10-31").await;
    assert_eq!(r["totals"]["visits"], ov["visits_this_month"]);
    assert_eq!(r["totals"]["visits"], json!(9));
    let gifts = json_of(
        &t,
        &t.admin,
        "/api/v1/dashboard/gifts?from=2021-10-01&to=2021-10-31&group_by=month",
    )
    .await;
    let october = &gifts["items"][0];
    assert_eq!(october["key"], json!("2021-10"));
    for (report, dashboard) in [
        ("cash_fen", "cash_fen"),
        ("cash_yuan", "cash_yuan"),
        ("goods_fen", "goods_fen"),
        ("goods_count", "goods_count"),
        ("flowers_count", "flowers_count"),
        ("visits", "visits"),
    ] {
        assert_eq!(r["totals"][report], october[dashboard], "{report}");
    }
    // Per city: the gifts dashboard's city grouping, row for row.
    let cities = json_of(
        &t,
        &t.admin,
        "/api/v1/dashboard/gifts?from=2021-10-01&to=2021-10-31&group_by=city",
    )
    .await;
    let by_city = r["by_city"].as_array().unwrap();
    assert_eq!(by_city.len(), cities["items"].as_array().unwrap().len());
    for (line, g) in by_city.iter().zip(cities["items"].as_array().unwrap()) {
        assert_eq!(line["code"], g["key"]);
        assert_eq!(line["name"], g["label"]);
        assert_eq!(line["visits"], g["visits"]);
        assert_eq!(line["cash_fen"], g["cash_fen"]);
    }
    // People reached: the distinct model workers of the visits list.
    let visits = json_of(
        &t,
        &t.admin,
        "/api/v1/visits?from=2021-10-01&to=2021-10-31&limit=500",
    )
    .await;
    let mut people: Vec<&str> = visits["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["model_worker_id"].as_str().unwrap())
        .collect();
    people.sort_unstable();
    people.dedup();
    assert_eq!(r["totals"]["people_reached"], json!(people.len()));

    // The year 2021, computed as of its last day: the overview's year figures, the issues
    // summary and the overdue list for that date.
    let year = json_of(
        &t,
        &t.admin,
        "/api/v1/reports/yearly?period=2021&format=json",
    )
    .await;
    let y = &year["report"];
    assert_eq!(y["as_of"], json!("2021-12-31"));
    let ov = json_of(&t, &t.admin, "/api/v1/dashboard/overview?as_of=2021-12-31").await;
    for (report, dashboard) in [
        ("visits", "visits_this_year"),
        ("cash_fen", "cash_fen_this_year"),
        ("cash_yuan", "cash_yuan_this_year"),
        ("goods_fen", "goods_fen_this_year"),
        ("goods_count", "goods_given_this_year"),
        ("flowers_count", "flowers_given_this_year"),
    ] {
        assert_eq!(y["totals"][report], ov[dashboard], "{report}");
    }
    let issues = json_of(&t, &t.admin, "/api/v1/dashboard/issues?as_of=2021-12-31").await;
    let open: i64 = issues["open_by_state_and_age"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_i64().unwrap())
        .sum();
    assert_eq!(y["totals"]["open_issues"], json!(open));
    let by_body = y["issues"]["by_body"].as_array().unwrap();
    assert_eq!(by_body.len(), issues["by_body"].as_array().unwrap().len());
    for (line, b) in by_body.iter().zip(issues["by_body"].as_array().unwrap()) {
        assert_eq!(line["body_id"], b["body_id"]);
        assert_eq!(line["open"], b["open"]);
        assert_eq!(line["breached"], b["breached"]);
    }
    let overdue = json_of(
        &t,
        &t.admin,
        "/api/v1/pairings?as_of=2021-12-31&status=overdue&limit=500",
    )
    .await;
    assert_eq!(
        y["totals"]["overdue_pairings"],
        json!(overdue["items"].as_array().unwrap().len())
    );
    // Half a year later every pairing is overdue, and the report says so.
    let later = json_of(
        &t,
        &t.admin,
        "/api/v1/reports/monthly?period=2022-06&format=json",
    )
    .await;
    assert_eq!(later["report"]["totals"]["overdue_pairings"], json!(8));
    assert_eq!(later["report"]["overdue"].as_array().unwrap().len(), 8);
    assert_eq!(later["report"]["totals"]["visits"], json!(0));

    // The workbook: Chinese sheet names, the same totals, money as yuan numbers.
    let (book, disposition) =
        bytes_of(&t, "/api/v1/reports/yearly?period=2021&format=xlsx", XLSX).await;
    assert!(disposition.starts_with(
        "attachment; filename=\"caretrail-yearly-report-2021.xlsx\"; filename*=UTF-8''"
    ));
    assert_eq!(sheet_names(&book), ["概览", "地区", "问题", "逾期结对"]);
    let summary = sheet(&book, "概览");
    let total = |label| number(cell_after(&summary, Some("汇总"), label, 1));
    assert_eq!(total("走访次数"), y["totals"]["visits"].as_f64().unwrap());
    assert_eq!(
        total("慰问金（元）"),
        y["totals"]["cash_fen"].as_f64().unwrap() / 100.0
    );
    assert_eq!(
        total("走访劳模人数"),
        y["totals"]["people_reached"].as_f64().unwrap()
    );
    assert_eq!(total("未办结问题"), open as f64);
    assert_eq!(
        cell_after(&summary, None, "单位", 1),
        &Data::String("浙江省劳动模范协会".into())
    );
    assert_eq!(
        number(cell_after(&summary, None, "日志位置", 1)),
        y["log_position"].as_f64().unwrap()
    );
    let regions = sheet(&book, "地区");
    let city_total = number(cell_after(&regions, Some("按设区市"), "合计", 2));
    let county_total = number(cell_after(&regions, Some("按县（市、区）"), "合计", 4));
    assert_eq!(city_total, ov["visits_this_year"].as_f64().unwrap());
    assert_eq!(county_total, city_total);
    // Hangzhou had three visits, shown with its name beside its code.
    let hangzhou = regions
        .iter()
        .find(|r| r.first() == Some(&Data::String("330100".into())))
        .unwrap();
    assert_eq!(hangzhou[1], Data::String("杭州市".into()));
    assert_eq!(number(&hangzhou[2]), 3.0);
    let cash_sum: f64 = regions
        .iter()
        .skip_while(|r| r.first() != Some(&Data::String("按设区市".into())))
        .skip(2)
        .take_while(|r| r.first() != Some(&Data::String("合计".into())))
        .map(|r| number(&r[4]))
        .sum();
    assert_eq!(cash_sum, y["totals"]["cash_fen"].as_f64().unwrap() / 100.0);

    // The CSV: a byte-order mark, the same figures as text.
    let (csv, disposition) = bytes_of(
        &t,
        "/api/v1/reports/yearly?period=2021&format=csv",
        "text/csv",
    )
    .await;
    assert!(disposition.contains("filename=\"caretrail-yearly-report-2021.csv\""));
    let rows = csv_rows(&csv);
    assert_eq!(
        csv_value(&rows, "走访次数"),
        y["totals"]["visits"].to_string()
    );
    assert_eq!(
        csv_value(&rows, "慰问金（元）"),
        y["totals"]["cash_yuan"].as_str().unwrap()
    );
    assert_eq!(csv_value(&rows, "单位"), "浙江省劳动模范协会");
    assert!(
        rows.iter()
            .any(|r| r.first().map(String::as_str) == Some("地区 · 按设区市"))
    );

    // English on request.
    let (book, disposition) =
        bytes_of(&t, "/api/v1/reports/monthly?period=2021-10&lang=en", XLSX).await;
    assert!(disposition.ends_with("filename*=UTF-8''caretrail-monthly-report-2021-10.xlsx"));
    assert_eq!(
        sheet_names(&book),
        ["Summary", "Regions", "Issues", "Overdue pairings"]
    );
    let summary = sheet(&book, "Summary");
    assert_eq!(
        number(cell_after(&summary, Some("Totals"), "Visits", 1)),
        9.0
    );
}

async fn a_report_as_of_a_log_position_equals_the_replayed_dashboards(h: &Harness) {
    let t = spawn(h).await;
    let auditor = t.token(Role::Auditor, None).await;
    let head = t.app.store().head().await.unwrap().position;
    for position in [40, head] {
        let r = json_of(
            &t,
            &auditor,
            &format!(
                "/api/v1/reports/monthly?period=2021-10&format=json&as_of_position={position}"
            ),
        )
        .await;
        let r = &r["report"];
        assert_eq!(r["replayed"], json!(true));
        assert_eq!(r["log_position"], json!(position));
        let ov = json_of(
            &t,
            &auditor,
            &format!("/api/v1/dashboard/overview?as_of=2021-10-31&as_of_position={position}"),
        )
        .await;
        assert_eq!(r["totals"]["visits"], ov["visits_this_month"], "{position}");
    }
    // The live report says the position its read models were at: the head, once the
    // projector has caught up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let live = json_of(
            &t,
            &auditor,
            "/api/v1/reports/yearly?period=2021&format=json",
        )
        .await;
        assert_eq!(live["report"]["replayed"], json!(false));
        let at = live["report"]["log_position"].as_u64().unwrap();
        assert!(at <= head, "{at} > {head}");
        if at == head {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "stuck at {at}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn bad_report_input_answers_400_with_stable_codes(h: &Harness) {
    let t = spawn(h).await;
    for (path, code) in [
        ("/api/v1/reports/monthly?period=2021-13", "invalid_period"),
        ("/api/v1/reports/monthly?period=2021-00", "invalid_period"),
        ("/api/v1/reports/monthly?period=2021-1", "invalid_period"),
        ("/api/v1/reports/monthly?period=2021", "invalid_period"),
        ("/api/v1/reports/monthly?period=%3D1%2B1", "invalid_period"),
        ("/api/v1/reports/yearly?period=2021-10", "invalid_period"),
        ("/api/v1/reports/yearly?period=21", "invalid_period"),
        ("/api/v1/reports/yearly?period=1948", "period_out_of_range"),
        (
            "/api/v1/reports/monthly?period=1948-12",
            "period_out_of_range",
        ),
        (
            "/api/v1/reports/monthly?period=2021-11&as_of=2021-10-31",
            "period_out_of_range",
        ),
        ("/api/v1/reports/yearly?period=9999", "period_out_of_range"),
        (
            "/api/v1/reports/yearly?period=2021&format=pdf",
            "unsupported_format",
        ),
        (
            "/api/v1/reports/yearly?period=2021&format=",
            "unsupported_format",
        ),
        ("/api/v1/reports/yearly", "invalid_query"),
        (
            "/api/v1/reports/yearly?period=2021&lang=fr",
            "invalid_query",
        ),
        (
            "/api/v1/reports/yearly?period=2021&city=330100",
            "invalid_query",
        ),
        (
            "/api/v1/reports/yearly?period=2021&as_of_position=1&as_of_recorded_at=2021-01-01T00:00:00Z",
            "invalid_query",
        ),
        (
            "/api/v1/reports/yearly?period=2021&as_of_position=99999999",
            "invalid_query",
        ),
    ] {
        let body = problem(t.get(&t.admin, path).await, StatusCode::BAD_REQUEST, code).await;
        // The detail repeats nothing that was sent.
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            !detail.contains("=1+1") && !detail.contains("pdf"),
            "{detail}"
        );
    }
    // A huge period is refused, not parsed.
    let long = "9".repeat(10_000);
    problem(
        t.get(&t.admin, &format!("/api/v1/reports/yearly?period={long}"))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_period",
    )
    .await;
}

async fn a_period_without_data_is_a_report_of_zeros(h: &Harness) {
    let t = spawn(h).await;
    let r = json_of(
        &t,
        &t.admin,
        "/api/v1/reports/monthly?period=1950-01&format=json",
    )
    .await;
    let totals = &r["report"]["totals"];
    for field in [
        "visits",
        "people_reached",
        "cash_fen",
        "goods_fen",
        "goods_count",
        "flowers_count",
    ] {
        assert_eq!(totals[field], json!(0), "{field}");
    }
    assert_eq!(totals["cash_yuan"], json!("0.00"));
    assert!(r["report"]["by_city"].as_array().unwrap().is_empty());
    let (book, _) = bytes_of(&t, "/api/v1/reports/monthly?period=1950-01", XLSX).await;
    let summary = sheet(&book, "概览");
    assert_eq!(
        number(cell_after(&summary, Some("汇总"), "走访次数", 1)),
        0.0
    );
    assert_eq!(
        number(cell_after(&summary, Some("汇总"), "慰问金（元）", 1)),
        0.0
    );
    let (csv, _) = bytes_of(
        &t,
        "/api/v1/reports/yearly?period=1950&format=csv",
        "text/csv",
    )
    .await;
    assert_eq!(csv_value(&csv_rows(&csv), "慰问金（元）"), "0.00");
}

async fn only_dashboard_readers_get_reports(h: &Harness) {
    let t = spawn(h).await;
    let auditor = t.token(Role::Auditor, None).await;
    let director = t
        .token(Role::Director, Some(demo::directors::FENG_YALI.uuid()))
        .await;
    let integration = t.token(Role::Integration, None).await;
    for path in [
        "/api/v1/reports/monthly?period=2021-10",
        "/api/v1/reports/yearly?period=2021&format=csv",
    ] {
        assert_eq!(t.get(&auditor, path).await.status(), StatusCode::OK);
        for token in [&director, &integration] {
            problem(t.get(token, path).await, StatusCode::FORBIDDEN, "forbidden").await;
        }
        // The role is checked before the input: a director learns nothing from a bad period.
        problem(
            t.get(&director, "/api/v1/reports/monthly?period=nope")
                .await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
        let res = t
            .client
            .get(format!("{}{path}", t.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // A report names no person: the administrator's report has no model worker's or
    // director's name (the demo's names are in the event log, sealed).
    let r = json_of(
        &t,
        &t.admin,
        "/api/v1/reports/monthly?period=2022-06&format=json",
    )
    .await;
    let text = r.to_string();
    for name in ["俞培叶", "冯亚丽", "王美文"] {
        assert!(!text.contains(name), "{name} in a report");
    }
}

async fn formula_injection_a_body_named_like_a_formula_is_written_inert(h: &Harness) {
    let t = spawn(h).await;
    let body = Uuid::now_v7();
    let issue = Uuid::now_v7();
    let name = "=HYPERLINK(\"http://example.invalid\",\"点击\")";
    for (command, payload) in [
        (
            "RegisterBody",
            json!({ "body_id": body, "kind": "union_city", "name": name, "region_code": "330100" }),
        ),
        (
            "RaiseIssue",
            json!({ "issue_id": issue, "model_worker_id": demo::workers::YU_PEIYE.uuid(),
                    "category": "medical", "description": "看病难", "urgency": "normal",
                    "on": "2021-10-20" }),
        ),
        (
            "AcknowledgeIssue",
            json!({ "issue_id": issue, "owner": demo::directors::FENG_YALI.uuid(),
                    "respond_by": "2021-10-25", "on": "2021-10-20" }),
        ),
        (
            "EscalateIssue",
            json!({ "issue_id": issue, "to_body": body, "channel": "letter",
                    "due_by": "2021-10-28", "on": "2021-10-21" }),
        ),
    ] {
        let res = t.post(&t.admin, command, payload).await;
        assert_eq!(res.status(), StatusCode::CREATED, "{command}");
    }
    // Wait for the read models to show the escalation.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let s = json_of(&t, &t.admin, "/api/v1/dashboard/issues?as_of=2021-10-31").await;
        if s["by_body"].to_string().contains("HYPERLINK") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{s}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The workbook holds the name as a string cell, never as a formula (`sheet` checks
    // that no cell anywhere is one).
    let (book, _) = bytes_of(&t, "/api/v1/reports/monthly?period=2021-10", XLSX).await;
    let issues = sheet(&book, "问题");
    let row = issues
        .iter()
        .find(|r| r.first() == Some(&Data::String(name.into())))
        .expect("the body's row, its name as text");
    assert_eq!(number(&row[1]), 1.0);
    // The CSV neutralises it with a leading apostrophe; no field starts like a formula.
    let (csv, _) = bytes_of(
        &t,
        "/api/v1/reports/monthly?period=2021-10&format=csv",
        "text/csv",
    )
    .await;
    let rows = csv_rows(&csv);
    assert!(rows.iter().any(|r| r.first() == Some(&format!("'{name}"))));
    for field in rows.iter().flatten() {
        assert!(
            !field.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "{field:?} starts like a formula"
        );
    }
    // The JSON keeps the name as it is (a web page shows text as text).
    let r = json_of(
        &t,
        &t.admin,
        "/api/v1/reports/monthly?period=2021-10&format=json",
    )
    .await;
    assert!(
        r["report"]["issues"]["by_body"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["name"] == json!(name))
    );
}
