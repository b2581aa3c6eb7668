//! Roster imports: templates, an XLSX and a CSV roster previewed and committed, a second
//! import of the same file writing nothing, duplicate resident ID numbers (in the file,
//! against a registered model worker, and no longer after that person's erasure), the
//! domain's refusals in a pairing roster, who may import, and attacks on the reader (zip
//! bomb, truncated zip, dense-range bomb, huge cells, formulas, wrong sheet, no header,
//! 10,001 rows, a body over the limit), and attacks on the commit: two previews of one file
//! committed at once, people erased between preview and commit, hand-sent commands racing a
//! commit under its keys, a commit cut by its client then committed again, and the same with
//! one of its people erased through another instance in between.

use std::io::Write;

use caretrail_domain::demo;
use caretrail_http::Role;
use caretrail_store::testing::Harness;
use reqwest::StatusCode;
use rust_xlsxwriter::Workbook;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::*;

caretrail_store::both_backends!(
    templates_download_for_administrators_in_both_formats,
    an_xlsx_roster_commits_its_good_rows_and_a_second_import_writes_nothing,
    a_csv_roster_of_directors_imports_with_a_byte_order_mark,
    duplicate_id_numbers_are_found_in_the_file_and_against_the_registered_until_erased,
    a_pairing_roster_reports_the_domains_refusals_per_row,
    a_row_the_domain_refuses_at_commit_is_reported_and_the_others_commit,
    a_row_whose_key_another_request_took_is_refused_and_the_others_commit,
    only_administrators_import_and_only_their_own_previews,
    attack_malformed_and_oversized_files_are_refused_with_stable_codes,
    attack_formulas_and_huge_cells_are_row_problems_not_stored,
    attack_two_previews_of_one_file_committed_at_once_write_each_row_once,
    attack_people_erased_between_preview_and_commit_are_refused_per_row_and_stay_erased,
    attack_hand_sent_commands_racing_a_commit_under_its_keys_never_both_write,
    attack_a_commit_cut_by_its_client_and_committed_again_loses_and_doubles_nothing,
    attack_a_person_erased_on_another_instance_after_a_cut_commit_is_refused_on_recommit,
);

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const CSV: &str = "text/csv; charset=utf-8";

const WORKER_HEADER: [&str; 6] = ["姓名", "荣誉称号", "地区代码", "职业", "电话", "身份证号"];

/// A resident ID number with a valid check digit (GB 11643-1999) for 17 digits.
fn id_number(first17: &str) -> String {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17
        .bytes()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    format!("{first17}{}", b"10X98765432"[(sum % 11) as usize] as char)
}

/// A workbook with one sheet `sheet` holding `rows` as text cells.
fn workbook(sheet: &str, rows: &[Vec<String>]) -> Vec<u8> {
    let mut book = Workbook::new();
    let ws = book.add_worksheet();
    ws.set_name(sheet).unwrap();
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            ws.write_string(r as u32, c as u16, cell.as_str()).unwrap();
        }
    }
    book.save_to_buffer().unwrap()
}

fn strings(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|s| (*s).to_owned()).collect()
}

fn csv(rows: &[Vec<String>]) -> Vec<u8> {
    let mut out = Vec::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
            .collect();
        out.extend_from_slice(line.join(",").as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

async fn upload(
    t: &TestApp,
    token: &str,
    kind: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    t.client
        .post(format!("{}/api/v1/imports?kind={kind}", t.base))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request")
}

async fn preview(t: &TestApp, kind: &str, content_type: &str, body: Vec<u8>) -> Value {
    let res = upload(t, &t.admin, kind, content_type, body).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn commit(t: &TestApp, token: &str, id: &Value) -> reqwest::Response {
    t.client
        .post(format!(
            "{}/api/v1/imports/{}/commit",
            t.base,
            id.as_str().unwrap()
        ))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

async fn committed(t: &TestApp, id: &Value) -> Value {
    let res = commit(t, &t.admin, id).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

fn row(report: &Value, number: u64) -> &Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["row"] == json!(number))
        .unwrap_or_else(|| panic!("no row {number} in {report}"))
}

fn codes(row: &Value) -> Vec<String> {
    row["problems"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| p["code"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn head(t: &TestApp) -> u64 {
    t.app.store().head().await.unwrap().position
}

async fn templates_download_for_administrators_in_both_formats(h: &Harness) {
    let t = spawn(h).await;
    for kind in ["model-workers", "directors", "pairings"] {
        let res = t
            .get(&t.admin, &format!("/api/v1/imports/templates/{kind}.xlsx"))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], XLSX);
        assert!(
            res.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .contains(kind)
        );
        let bytes = res.bytes().await.unwrap();
        assert!(bytes.starts_with(b"PK\x03\x04"));
        // The empty template reads back: its header fits, and it has no data rows.
        let res = upload(&t, &t.admin, kind, XLSX, bytes.to_vec()).await;
        problem(res, StatusCode::UNPROCESSABLE_ENTITY, "import_no_rows").await;

        let res = t
            .get(&t.admin, &format!("/api/v1/imports/templates/{kind}.csv"))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        let text = res.text().await.unwrap();
        assert!(
            text.starts_with('\u{feff}'),
            "Excel needs the byte-order mark"
        );
        let mut lines = text.trim_start_matches('\u{feff}').lines();
        let zh = lines.next().unwrap();
        assert!(zh.contains("编号"), "{zh}");
        let en = lines.next().unwrap();
        assert!(en.contains("_id"), "{en}");
    }
    let res = t
        .get(&t.admin, "/api/v1/imports/templates/visits.xlsx")
        .await;
    problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = t
        .get(&t.admin, "/api/v1/imports/templates/model-workers.pdf")
        .await;
    problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let auditor = t.token(Role::Auditor, None).await;
    let res = t
        .get(&auditor, "/api/v1/imports/templates/model-workers.xlsx")
        .await;
    problem(res, StatusCode::FORBIDDEN, "forbidden").await;
}

fn worker_rows() -> Vec<Vec<String>> {
    vec![
        strings(&WORKER_HEADER),
        strings(&[
            "王建国",
            "省劳动模范",
            "330106",
            "种粮大户",
            "+86 138 0000 0001",
            &id_number("33010619700101001"),
        ]),
        strings(&["李秀英", "全国劳动模范", "330825", "", "", ""]),
        // A region code that is six digits but not a Zhejiang division.
        strings(&["赵大明", "省先进工作者", "999999", "", "", ""]),
        strings(&[
            "孙丽",
            "national_advanced_worker",
            "330783",
            "",
            "0570-1234567",
            &id_number("33078319800202002"),
        ]),
    ]
}

async fn an_xlsx_roster_commits_its_good_rows_and_a_second_import_writes_nothing(h: &Harness) {
    let t = spawn(h).await;
    let file = workbook("名册", &worker_rows());
    let before = head(&t).await;
    let report = preview(&t, "model-workers", XLSX, file.clone()).await;
    assert_eq!(head(&t).await, before, "a preview writes nothing");
    assert_eq!(report["format"], json!("xlsx"));
    assert_eq!(report["command"], json!("RegisterModelWorker"));
    assert_eq!(
        (
            report["total"].clone(),
            report["valid"].clone(),
            report["invalid"].clone()
        ),
        (json!(4), json!(3), json!(1)),
        "{report}"
    );
    let bad = row(&report, 4);
    assert_eq!(bad["status"], json!("invalid"));
    assert_eq!(codes(bad), vec!["region_code_unknown"]);
    assert_eq!(bad["problems"][0]["column"], json!("region_code"));
    assert!(
        bad["problems"][0]["message_zh"]
            .as_str()
            .unwrap()
            .contains("地区代码")
    );
    // No cell content comes back: names and ID numbers stay in the file.
    let text = report.to_string();
    assert!(
        !text.contains("王建国") && !text.contains("330106197001010"),
        "{text}"
    );

    let outcome = committed(&t, &report["id"]).await;
    assert_eq!(
        (
            outcome["written"].clone(),
            outcome["skipped"].clone(),
            outcome["rejected"].clone()
        ),
        (json!(3), json!(1), json!(0)),
        "{outcome}"
    );
    let after = head(&t).await;
    assert_eq!(after, before + 3, "one event per registered model worker");
    let worker = row(&report, 2)["record_id"].as_str().unwrap().to_owned();
    let file_of: Value = t
        .get(&t.admin, &format!("/api/v1/streams/modelworker-{worker}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        file_of.to_string().contains("王建国"),
        "the administrator reads the name: {file_of}"
    );

    // Committing the same preview again answers the same outcome and writes nothing.
    let again = committed(&t, &report["id"]).await;
    assert_eq!(again, outcome);
    assert_eq!(head(&t).await, after);

    // The same file uploaded again: its rows were imported, the commit replays them.
    let second = preview(&t, "model-workers", XLSX, file).await;
    assert_eq!(second["already_imported"], json!(3), "{second}");
    assert_eq!(second["invalid"], json!(1));
    assert_eq!(
        row(&second, 2)["record_id"],
        row(&report, 2)["record_id"],
        "ids derive from the file"
    );
    let replay = committed(&t, &second["id"]).await;
    assert_eq!(
        (replay["written"].clone(), replay["replayed"].clone()),
        (json!(0), json!(3)),
        "{replay}"
    );
    assert_eq!(
        row(&replay, 2)["command_id"],
        row(&outcome, 2)["command_id"],
        "the idempotency key derives from the file and the row"
    );
    assert_eq!(head(&t).await, after, "a second import writes nothing");
}

async fn a_csv_roster_of_directors_imports_with_a_byte_order_mark(h: &Harness) {
    let t = spawn(h).await;
    let body = demo::bodies::ASSOCIATION.0.to_string();
    let rows = vec![
        strings(&[
            "姓名",
            "所属组织编号",
            "职务",
            "任期开始",
            "任期结束",
            "电话",
        ]),
        strings(&[
            "钱学文",
            &body,
            "理事",
            "2024/3/1",
            "2028-02-29",
            "13900000000",
        ]),
        strings(&["周海", &body, "秘书长", "2024-03-01", "", ""]),
        strings(&[
            "吴敏",
            &Uuid::from_u128(0xB0D1).to_string(),
            "staff",
            "2024-03-01",
            "",
            "",
        ]),
        strings(&["郑强", &body, "副会长", "2024-13-01", "", ""]),
    ];
    let mut file = "\u{feff}".as_bytes().to_vec();
    file.extend(csv(&rows));
    let report = preview(&t, "directors", CSV, file).await;
    assert_eq!(report["format"], json!("csv"));
    assert_eq!(row(&report, 2)["status"], json!("valid"), "{report}");
    assert_eq!(
        codes(row(&report, 3)),
        vec!["import_invalid_value"],
        "not a role"
    );
    assert_eq!(row(&report, 3)["problems"][0]["column"], json!("role"));
    assert_eq!(
        row(&report, 4)["status"],
        json!("invalid"),
        "an unknown body: {report}"
    );
    assert_eq!(
        codes(row(&report, 5)),
        vec!["import_invalid_value"],
        "not a date"
    );
    let outcome = committed(&t, &report["id"]).await;
    assert_eq!(outcome["written"], json!(1), "{outcome}");
    let director = row(&report, 2)["record_id"].as_str().unwrap().to_owned();
    let events: Value = t
        .get(&t.admin, &format!("/api/v1/streams/director-{director}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(events.to_string().contains("钱学文"), "{events}");
}

async fn duplicate_id_numbers_are_found_in_the_file_and_against_the_registered_until_erased(
    h: &Harness,
) {
    let t = spawn(h).await;
    let registered_number = id_number("33010219650505003");
    let worker = Uuid::now_v7();
    let res = t
        .post(
            &t.admin,
            "RegisterModelWorker",
            json!({ "model_worker_id": worker, "honour": "other", "region_code": "330102",
                    "name": "钱一", "id_number": registered_number }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let twice = id_number("33010419881111004");
    let rows = vec![
        strings(&WORKER_HEADER),
        strings(&["甲", "其他", "330104", "", "", &twice]),
        // The same number in lower case is the same number.
        strings(&["乙", "其他", "330104", "", "", &twice.to_lowercase()]),
        strings(&["丙", "其他", "330102", "", "", &registered_number]),
        // A wrong check digit.
        strings(&["丁", "其他", "330102", "", "", "330102196505050031"]),
    ];
    let file = csv(&rows);
    let report = preview(&t, "model-workers", CSV, file.clone()).await;
    assert_eq!(row(&report, 2)["status"], json!("valid"), "{report}");
    let dup = row(&report, 3);
    assert_eq!(codes(dup), vec!["import_duplicate_in_file"]);
    assert!(
        dup["problems"][0]["message_zh"]
            .as_str()
            .unwrap()
            .contains("第 2 行")
    );
    let known = row(&report, 4);
    assert_eq!(codes(known), vec!["import_id_number_registered"]);
    assert!(
        known["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains(&worker.to_string())
    );
    assert_eq!(codes(row(&report, 5)), vec!["import_invalid_value"]);
    assert!(!report.to_string().contains(&registered_number[..12]));

    // Erased, the registered person's number can no longer be matched.
    let res = t
        .post(
            &t.admin,
            "ErasePersonalData",
            json!({ "subject_id": worker, "legal_basis": "subject_request" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let report = preview(&t, "model-workers", CSV, file).await;
    assert_eq!(row(&report, 4)["status"], json!("valid"), "{report}");
    assert_eq!(
        codes(row(&report, 3)),
        vec!["import_duplicate_in_file"],
        "still twice in the file"
    );
}

async fn a_pairing_roster_reports_the_domains_refusals_per_row(h: &Harness) {
    let t = spawn(h).await;
    let unknown = Uuid::from_u128(0xDEAD).to_string();
    let rows = vec![
        strings(&["理事编号", "劳模编号", "生效日期"]),
        // 俞培叶 is paired with 冯亚丽 already.
        strings(&[
            &demo::directors::CHEN_MEIFANG.0.to_string(),
            &demo::workers::YU_PEIYE.0.to_string(),
            "2025-01-01",
        ]),
        strings(&[
            &unknown,
            &demo::workers::CHEN_LIANGSONG.0.to_string(),
            "2025-01-01",
        ]),
        strings(&[
            &demo::directors::CHEN_MEIFANG.0.to_string(),
            &demo::workers::CHEN_LIANGSONG.0.to_string(),
            "2025-01-01",
        ]),
        strings(&[
            "not-an-id",
            &demo::workers::CHEN_LIANGSONG.0.to_string(),
            "2025-01-01",
        ]),
    ];
    let before = head(&t).await;
    let report = preview(&t, "pairings", XLSX, workbook("名册", &rows)).await;
    assert_eq!(head(&t).await, before);
    let paired = codes(row(&report, 2));
    assert_eq!(paired.len(), 1, "{report}");
    assert!(
        !paired[0].starts_with("import_"),
        "the domain's own code: {paired:?}"
    );
    assert!(
        row(&report, 2)["problems"][0]["message_zh"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    let unknown_director = codes(row(&report, 3));
    assert_eq!(unknown_director.len(), 1, "{report}");
    assert!(
        unknown_director[0].contains("director"),
        "{unknown_director:?}"
    );
    assert_eq!(
        codes(row(&report, 4)),
        vec!["import_duplicate_in_file", "import_duplicate_in_file"],
        "the director of row 2 and the model worker of row 3: {report}"
    );
    assert_eq!(codes(row(&report, 5)), vec!["import_invalid_value"]);
}

async fn a_row_the_domain_refuses_at_commit_is_reported_and_the_others_commit(h: &Harness) {
    let t = spawn(h).await;
    let taken = Uuid::now_v7();
    let rows = vec![
        strings(&["劳模编号", "姓名", "荣誉称号", "地区代码"]),
        strings(&[&taken.to_string(), "甲", "其他", "330104"]),
        strings(&["", "乙", "其他", "330104"]),
    ];
    let report = preview(&t, "model-workers", CSV, csv(&rows)).await;
    assert_eq!(report["valid"], json!(2), "{report}");
    // Between preview and commit, someone registers the first row's id by hand.
    let res = t
        .post(&t.admin, "RegisterModelWorker", json!({ "model_worker_id": taken, "honour": "other", "region_code": "330102", "name": "抢先" }))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let outcome = committed(&t, &report["id"]).await;
    let refused = row(&outcome, 2);
    assert_eq!(refused["outcome"], json!("rejected"), "{outcome}");
    assert_eq!(refused["code"], json!("model_worker_already_registered"));
    assert!(
        refused["message_zh"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert_eq!(row(&outcome, 3)["outcome"], json!("written"));
}

/// The commit claims all its rows' Idempotency-Keys in one transaction: a key already bound
/// to another request (here a command sent by hand under row 2's key) refuses that row with
/// the same code the command route gives, and the other rows still commit.
async fn a_row_whose_key_another_request_took_is_refused_and_the_others_commit(h: &Harness) {
    use sha2::Digest;
    let t = spawn(h).await;
    let rows = vec![
        strings(&["姓名", "荣誉称号", "地区代码"]),
        strings(&["甲", "其他", "330104"]),
        strings(&["乙", "其他", "330104"]),
    ];
    let file = csv(&rows);
    let report = preview(&t, "model-workers", CSV, file.clone()).await;
    assert_eq!(report["valid"], json!(2), "{report}");
    let key = format!(
        "import:{}:model-workers:2",
        hex::encode(sha2::Sha256::digest(&file))
    );
    let res = t
        .client
        .post(format!("{}/api/v1/commands/RegisterBody", t.base))
        .bearer_auth(&t.admin)
        .header("idempotency-key", &key)
        .json(&json!({ "body_id": Uuid::now_v7(), "kind": "association", "name": "抢键协会" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "{}",
        res.text().await.unwrap()
    );
    let before = head(&t).await;
    let outcome = committed(&t, &report["id"]).await;
    let refused = row(&outcome, 2);
    assert_eq!(refused["outcome"], json!("rejected"), "{outcome}");
    assert_eq!(refused["code"], json!("idempotency_key_reused"));
    assert_eq!(row(&outcome, 3)["outcome"], json!("written"), "{outcome}");
    assert_eq!(head(&t).await, before + 1, "only row 3 was written");
}

async fn only_administrators_import_and_only_their_own_previews(h: &Harness) {
    let t = spawn(h).await;
    let file = csv(&worker_rows());
    let director = t
        .token(Role::Director, Some(demo::directors::FENG_YALI.0))
        .await;
    let auditor = t.token(Role::Auditor, None).await;
    let integration = t.token(Role::Integration, None).await;
    for token in [&director, &auditor, &integration] {
        let res = upload(&t, token, "model-workers", CSV, file.clone()).await;
        problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let res = t
        .client
        .post(format!("{}/api/v1/imports?kind=model-workers", t.base))
        .body(file.clone())
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let report = preview(&t, "model-workers", CSV, file).await;
    for token in [&director, &auditor] {
        problem(
            commit(&t, token, &report["id"]).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    }
    let other_admin = t.token(Role::Admin, None).await;
    problem(
        commit(&t, &other_admin, &report["id"]).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    problem(
        commit(&t, &t.admin, &json!(Uuid::new_v4().to_string())).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let res = t
        .client
        .post(format!("{}/api/v1/imports/not-a-uuid/commit", t.base))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::BAD_REQUEST, "invalid_path_parameter").await;
    // An unknown kind names the parameter, not the value.
    let res = upload(&t, &t.admin, "visits", CSV, b"x".to_vec()).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(!res.text().await.unwrap().contains("visits"));
}

/// A zip of one part, `xl/worksheets/sheet1.xml`: `size` zero bytes deflated, with the part's
/// uncompressed size declared as `declared` in both the local and the central header (a bomb
/// that states its size, and one that lies about it).
fn zip_bomb(size: usize, declared: u32) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("xl/worksheets/sheet1.xml", options).unwrap();
    zip.write_all(&vec![0u8; size]).unwrap();
    zip.finish().unwrap();
    let mut bytes = out.into_inner();
    // The local header's uncompressed size is at offset 22, the central header's at 24.
    assert_eq!(&bytes[..4], b"PK\x03\x04");
    bytes[22..26].copy_from_slice(&declared.to_le_bytes());
    let central = bytes
        .windows(4)
        .position(|w| w == b"PK\x01\x02")
        .expect("a central directory");
    bytes[central + 24..central + 28].copy_from_slice(&declared.to_le_bytes());
    bytes
}

async fn attack_malformed_and_oversized_files_are_refused_with_stable_codes(h: &Harness) {
    let t = spawn(h).await;
    let kind = "model-workers";
    // A zip bomb that declares what it inflates to (here 3 GiB), and one that declares 1 KiB
    // and inflates to 4 MiB: neither is inflated past what it may hold.
    let bomb = zip_bomb(1 << 20, 3 << 30);
    let res = upload(&t, &t.admin, kind, XLSX, bomb).await;
    problem(
        res,
        StatusCode::PAYLOAD_TOO_LARGE,
        "import_workbook_too_large",
    )
    .await;
    let liar = zip_bomb(4 << 20, 1024);
    assert!(liar.len() < 64 << 10, "{}", liar.len());
    let res = upload(&t, &t.admin, kind, XLSX, liar).await;
    problem(
        res,
        StatusCode::PAYLOAD_TOO_LARGE,
        "import_workbook_too_large",
    )
    .await;
    // A truncated workbook.
    let good = workbook("名册", &worker_rows());
    let res = upload(&t, &t.admin, kind, XLSX, good[..good.len() / 2].to_vec()).await;
    problem(res, StatusCode::BAD_REQUEST, "import_bad_workbook").await;
    // A zip that says it is CSV, text that says it is XLSX.
    let res = upload(&t, &t.admin, kind, CSV, good.clone()).await;
    problem(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "import_type_mismatch",
    )
    .await;
    let res = upload(&t, &t.admin, kind, XLSX, csv(&worker_rows())).await;
    problem(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "import_type_mismatch",
    )
    .await;
    let res = upload(&t, &t.admin, kind, "application/json", csv(&worker_rows())).await;
    problem(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    // Octet-stream: the bytes decide.
    let res = upload(&t, &t.admin, kind, "application/octet-stream", good).await;
    assert_eq!(res.status(), StatusCode::OK);
    // The wrong sheet.
    let res = upload(&t, &t.admin, kind, XLSX, workbook("Sheet1", &worker_rows())).await;
    let body = problem(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "import_sheet_missing",
    )
    .await;
    assert!(body["detail_zh"].as_str().unwrap().contains("名册"));
    // No header: data from the first row.
    let res = upload(&t, &t.admin, kind, CSV, csv(&worker_rows()[1..])).await;
    problem(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "import_wrong_columns",
    )
    .await;
    // Another roster's columns.
    let res = upload(&t, &t.admin, "pairings", CSV, csv(&worker_rows())).await;
    let body = problem(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "import_wrong_columns",
    )
    .await;
    assert!(body["detail_zh"].as_str().is_some());
    // A header without a required column.
    let res = upload(
        &t,
        &t.admin,
        kind,
        CSV,
        csv(&[strings(&["姓名", "荣誉称号"]), strings(&["甲", "其他"])]),
    )
    .await;
    problem(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "import_wrong_columns",
    )
    .await;
    // Empty, not UTF-8, unterminated quote.
    problem(
        upload(&t, &t.admin, kind, CSV, Vec::new()).await,
        StatusCode::BAD_REQUEST,
        "import_empty",
    )
    .await;
    problem(
        upload(&t, &t.admin, kind, CSV, b"\xff\xfe\x00a".to_vec()).await,
        StatusCode::BAD_REQUEST,
        "import_bad_csv",
    )
    .await;
    // 10,001 data rows.
    let mut many = vec![strings(&WORKER_HEADER)];
    many.extend((0..10_001).map(|i| strings(&[&format!("人{i}"), "其他", "330104", "", "", ""])));
    let res = upload(&t, &t.admin, kind, CSV, csv(&many)).await;
    problem(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "import_too_many_rows",
    )
    .await;
    // A dense-range bomb: one cell at the sheet's last row.
    let mut book = Workbook::new();
    let ws = book.add_worksheet();
    ws.set_name("名册").unwrap();
    for (c, h) in WORKER_HEADER.iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    ws.write_string(1_048_575, 16_383, "x").unwrap();
    let res = upload(&t, &t.admin, kind, XLSX, book.save_to_buffer().unwrap()).await;
    let body = res.text().await.unwrap();
    assert!(
        body.contains("import_too_many_columns") || body.contains("import_too_many_rows"),
        "{body}"
    );
    // Over the upload limit, with and without a Content-Length.
    let huge = vec![b'a'; (8 << 20) + 1024];
    let res = upload(&t, &t.admin, kind, CSV, huge.clone()).await;
    problem(res, StatusCode::PAYLOAD_TOO_LARGE, "import_too_large").await;
    let stream = futures::stream::iter(
        huge.chunks(1 << 20)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let res = t
        .client
        .post(format!("{}/api/v1/imports?kind={kind}", t.base))
        .bearer_auth(&t.admin)
        .header("content-type", CSV)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::PAYLOAD_TOO_LARGE, "import_too_large").await;
}

async fn attack_formulas_and_huge_cells_are_row_problems_not_stored(h: &Harness) {
    let t = spawn(h).await;
    // An XLSX formula cell, and formula-like text in a CSV.
    let mut book = Workbook::new();
    let ws = book.add_worksheet();
    ws.set_name("名册").unwrap();
    for (c, h) in WORKER_HEADER.iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    ws.write_formula(1, 0, "=\"王\"&\"五\"").unwrap();
    ws.write_string(1, 1, "其他").unwrap();
    ws.write_string(1, 2, "330104").unwrap();
    ws.write_string(2, 0, "甲".repeat(501)).unwrap();
    ws.write_string(2, 1, "其他").unwrap();
    ws.write_string(2, 2, "330104").unwrap();
    // An ID number typed into a number cell has lost its last digits.
    ws.write_string(3, 0, "乙").unwrap();
    ws.write_string(3, 1, "其他").unwrap();
    ws.write_number(3, 2, 330104).unwrap();
    ws.write_number(3, 5, 330104198811110041.0).unwrap();
    let report = preview(&t, "model-workers", XLSX, book.save_to_buffer().unwrap()).await;
    assert_eq!(
        codes(row(&report, 2)),
        vec!["import_formula_cell"],
        "{report}"
    );
    assert_eq!(codes(row(&report, 3)), vec!["import_cell_too_long"]);
    assert_eq!(
        codes(row(&report, 4)),
        vec!["import_number_cell"],
        "a number cell region code reads as its digits; the ID does not"
    );

    let rows = vec![
        strings(&WORKER_HEADER),
        strings(&[
            "=HYPERLINK(\"http://x\",\"点我\")",
            "其他",
            "330104",
            "",
            "",
            "",
        ]),
        strings(&["@SUM(A1)", "其他", "330104", "", "", ""]),
        strings(&["丙", "其他", "330104", "-1+2", "", ""]),
        strings(&["丁", "其他", "330104", "", "+cmd|' /C calc'!A0", ""]),
        strings(&["戊", "其他", "330104", "", "+86 138 0000 0002", ""]),
        strings(&["己", "其他", "330104", "\u{202e}abc", "", ""]),
    ];
    let before = head(&t).await;
    let report = preview(&t, "model-workers", CSV, csv(&rows)).await;
    for r in 2..=5 {
        assert_eq!(
            codes(row(&report, r)),
            vec!["import_formula_text"],
            "row {r}: {report}"
        );
    }
    assert_eq!(
        row(&report, 6)["status"],
        json!("valid"),
        "a phone number may begin with +"
    );
    assert_eq!(
        codes(row(&report, 7)),
        vec!["validation_failed"],
        "the domain's text rule"
    );
    let outcome = committed(&t, &report["id"]).await;
    assert_eq!(outcome["written"], json!(1));
    assert_eq!(head(&t).await, before + 1);
}

/// `n` model workers with names and nothing else, for the race and cut attacks.
fn plain_workers(n: usize) -> Vec<u8> {
    let mut rows = vec![strings(&["姓名", "荣誉称号", "地区代码"])];
    rows.extend((0..n).map(|i| strings(&[&format!("劳模{i}"), "其他", "330104"])));
    csv(&rows)
}

/// Attack: the same file previewed twice and both previews committed at once. Each row's key
/// derives from the file, so the two commits share keys and bodies: every row must be written
/// by exactly one of them and replayed by the other, never refused as already registered and
/// never written twice.
async fn attack_two_previews_of_one_file_committed_at_once_write_each_row_once(h: &Harness) {
    let t = spawn(h).await;
    let file = plain_workers(40);
    let first = preview(&t, "model-workers", CSV, file.clone()).await;
    let second = preview(&t, "model-workers", CSV, file).await;
    assert_ne!(first["id"], second["id"]);
    let before = head(&t).await;
    let (a, b) = tokio::join!(committed(&t, &first["id"]), committed(&t, &second["id"]));
    assert_eq!(head(&t).await, before + 40, "one event per row: {a} {b}");
    for n in 2..=41 {
        let (x, y) = (row(&a, n), row(&b, n));
        assert_eq!(x["command_id"], y["command_id"], "row {n}");
        let mut pair = [
            x["outcome"].as_str().unwrap(),
            y["outcome"].as_str().unwrap(),
        ];
        pair.sort_unstable();
        assert_eq!(pair, ["replayed", "written"], "row {n}: {x} {y}");
    }
}

/// Attack: a person the preview registers is erased before the commit (an erasure may name any
/// id). Their row must be refused on its own, with the stable code, and never sealed under a
/// fresh key: the subject stays erased and no file of them appears; the other rows commit.
async fn attack_people_erased_between_preview_and_commit_are_refused_per_row_and_stay_erased(
    h: &Harness,
) {
    let t = spawn(h).await;
    let erased = Uuid::now_v7();
    let rows = vec![
        strings(&["劳模编号", "姓名", "荣誉称号", "地区代码", "电话"]),
        strings(&[&erased.to_string(), "甲", "其他", "330104", "13800000001"]),
        strings(&["", "乙", "其他", "330104", ""]),
    ];
    let report = preview(&t, "model-workers", CSV, csv(&rows)).await;
    assert_eq!(report["valid"], json!(2), "{report}");
    let res = t
        .post(
            &t.admin,
            "ErasePersonalData",
            json!({ "subject_id": erased, "legal_basis": "subject_request" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let before = head(&t).await;
    let outcome = committed(&t, &report["id"]).await;
    let refused = row(&outcome, 2);
    assert_eq!(refused["outcome"], json!("rejected"), "{outcome}");
    assert_eq!(refused["code"], json!("subject_erased"), "{outcome}");
    assert_eq!(row(&outcome, 3)["outcome"], json!("written"), "{outcome}");
    assert_eq!(head(&t).await, before + 1, "only row 3 was written");
    assert!(t.app.keys().is_erased(erased).await.unwrap());
    let res = t
        .get(&t.admin, &format!("/api/v1/streams/modelworker-{erased}"))
        .await;
    let text = res.text().await.unwrap();
    assert!(
        !text.contains("13800000001") && !text.contains("\"甲\""),
        "{text}"
    );
    // Committed again, the refused row stays refused: a refusal is final for the preview.
    let again = committed(&t, &report["id"]).await;
    assert_eq!(again, outcome);
    assert!(t.app.keys().is_erased(erased).await.unwrap());
}

/// Attack: while a commit runs, an administrator sends other commands by hand under the
/// commit's rows' Idempotency-Keys. For every row exactly one of the two may write: either the
/// commit wrote it and the hand-sent command was refused as a reused key, or the other way.
async fn attack_hand_sent_commands_racing_a_commit_under_its_keys_never_both_write(h: &Harness) {
    use sha2::Digest;
    let t = spawn(h).await;
    const ROWS: u64 = 30;
    let file = plain_workers(ROWS as usize);
    let report = preview(&t, "model-workers", CSV, file.clone()).await;
    let sha = hex::encode(sha2::Sha256::digest(&file));
    let before = head(&t).await;
    let hand = async {
        let mut answers = Vec::new();
        for n in 2..=ROWS + 1 {
            let res = t
                .client
                .post(format!("{}/api/v1/commands/RegisterBody", t.base))
                .bearer_auth(&t.admin)
                .header("idempotency-key", format!("import:{sha}:model-workers:{n}"))
                .json(&json!({ "body_id": Uuid::now_v7(), "kind": "association", "name": format!("抢键{n}") }))
                .send()
                .await
                .unwrap();
            answers.push((n, res.status()));
        }
        answers
    };
    let (outcome, answers) = tokio::join!(committed(&t, &report["id"]), hand);
    let mut writes = 0;
    for (n, status) in answers {
        let r = row(&outcome, n);
        match (status, r["outcome"].as_str().unwrap()) {
            (StatusCode::CREATED, "rejected") => {
                assert_eq!(r["code"], json!("idempotency_key_reused"), "row {n}");
            }
            (StatusCode::UNPROCESSABLE_ENTITY, "written") => {}
            other => panic!("row {n}: both or neither wrote: {other:?} {r}"),
        }
        writes += 1;
    }
    assert_eq!(head(&t).await, before + writes, "one write per key");
}

/// Attack: a large commit whose client goes away half-way (the handler is dropped with it),
/// then committed again. Every row must end written exactly once: rows the first attempt wrote
/// are replayed, the others are written, none is refused, lost or doubled.
async fn attack_a_commit_cut_by_its_client_and_committed_again_loses_and_doubles_nothing(
    h: &Harness,
) {
    let t = spawn(h).await;
    const ROWS: u64 = 2_000;
    let report = preview(&t, "model-workers", CSV, plain_workers(ROWS as usize)).await;
    assert_eq!(report["valid"], json!(ROWS));
    let before = head(&t).await;
    // The client goes away once some rows are written: the request's task is aborted, which
    // closes its connection, and the server drops the commit's handler with it.
    let partly = cut_commit(&t, &report, before, 50).await;
    assert!(partly < ROWS, "the cut commit finished: {partly}");
    let outcome = committed(&t, &report["id"]).await;
    let written = outcome["written"].as_u64().unwrap();
    let replayed = outcome["replayed"].as_u64().unwrap();
    assert_eq!(
        (outcome["rejected"].clone(), outcome["failed"].clone()),
        (json!(0), json!(0)),
        "{}",
        &outcome.to_string()[..500.min(outcome.to_string().len())]
    );
    assert_eq!(written + replayed, ROWS);
    assert_eq!(replayed, partly, "what the cut commit wrote is replayed");
    assert_eq!(head(&t).await, before + ROWS, "each row written once");
}

/// Sends `preview`'s commit and drops it once `rows` events were written after `before`, as a
/// client that goes away does; answers how many stayed written.
async fn cut_commit(t: &TestApp, preview: &Value, before: u64, rows: u64) -> u64 {
    let request = t
        .client
        .post(format!(
            "{}/api/v1/imports/{}/commit",
            t.base,
            preview["id"].as_str().unwrap()
        ))
        .bearer_auth(&t.admin)
        .send();
    let client = tokio::spawn(request);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while head(t).await < before + rows {
        assert!(
            std::time::Instant::now() < deadline,
            "the commit wrote nothing"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    client.abort();
    assert!(
        client.await.is_err_and(|e| e.is_cancelled()),
        "the commit was not cut"
    );
    let mut partly = head(t).await - before;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let now = head(t).await - before;
        if now == partly {
            return partly;
        }
        partly = now;
    }
}

/// Attack (two instances on one database): a commit on one instance made the keys of all its
/// people and was cut; a person it had not written yet is erased through the other instance;
/// committed again on the first, that person's row must be refused (`subject_erased`), not
/// sealed under the key the first instance kept in memory and served from there.
async fn attack_a_person_erased_on_another_instance_after_a_cut_commit_is_refused_on_recommit(
    h: &Harness,
) {
    let one = spawn(h).await;
    let other = spawn(h).await;
    const ROWS: u64 = 600;
    let mut rows = vec![strings(&["姓名", "荣誉称号", "地区代码", "电话"])];
    rows.extend((0..ROWS).map(|i| {
        strings(&[
            &format!("跨实例{i}"),
            "其他",
            "330104",
            &format!("1390000{i:04}"),
        ])
    }));
    let report = preview(&one, "model-workers", CSV, csv(&rows)).await;
    let last = ROWS + 1;
    let erased = row(&report, last)["record_id"].as_str().unwrap().to_owned();
    let before = head(&one).await;
    let partly = cut_commit(&one, &report, before, 20).await;
    assert!(partly + 64 < ROWS, "the cut commit ran too far: {partly}");
    let res = other
        .post(
            &other.admin,
            "ErasePersonalData",
            json!({ "subject_id": erased, "legal_basis": "subject_request" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let outcome = committed(&one, &report["id"]).await;
    let refused = row(&outcome, last);
    assert_eq!(refused["outcome"], json!("rejected"), "{refused}");
    assert_eq!(refused["code"], json!("subject_erased"));
    assert_eq!(
        (
            outcome["written"].as_u64().unwrap() + outcome["replayed"].as_u64().unwrap(),
            outcome["failed"].clone()
        ),
        (ROWS - 1, json!(0))
    );
    for t in [&one, &other] {
        let text = t
            .get(&t.admin, &format!("/api/v1/streams/modelworker-{erased}"))
            .await
            .text()
            .await
            .unwrap();
        assert!(
            !text.contains(&format!("跨实例{}", ROWS - 1)),
            "the erased person's name is served: {text}"
        );
    }
}
