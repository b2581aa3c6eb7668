//! Search by name (`q`) on the people lists: found by part of a name, combined with the region
//! filter and the cursor, within each role's reach, never matching erased people, and refused
//! without repeating what was sent; and the region table the page's pickers choose from.

use caretrail_domain::demo;
use caretrail_http::Role;
use caretrail_store::testing::Harness;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

caretrail_store::both_backends!(
    a_name_search_finds_part_of_a_name_with_the_region_filter_and_the_cursor,
    a_name_search_stays_within_the_roles_reach,
    a_search_text_that_is_not_a_name_is_refused_without_echoing_it,
    an_erased_person_never_matches_a_name_search,
    every_role_reads_the_region_table_for_pickers,
);

async fn items(t: &TestApp, token: &str, path: &str) -> Vec<Value> {
    let res = t.get(token, path).await;
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    let body: Value = res.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

fn ids(items: &[Value], field: &str) -> Vec<String> {
    items
        .iter()
        .map(|i| i[field].as_str().unwrap().to_owned())
        .collect()
}

async fn a_name_search_finds_part_of_a_name_with_the_region_filter_and_the_cursor(h: &Harness) {
    let t = spawn(h).await;
    let (wu_laihong, wu_gende) = (
        demo::workers::WU_LAIHONG.0.to_string(),
        demo::workers::WU_GENDE.0.to_string(),
    );
    // Two of the article's model workers are called 吴: 吴来红 in Wenzhou, 吴根德 in Ningbo.
    let both = items(&t, &t.admin, "/api/v1/model-workers?q=%E5%90%B4").await;
    let mut found = ids(&both, "model_worker_id");
    found.sort();
    let mut want = vec![wu_laihong.clone(), wu_gende.clone()];
    want.sort();
    assert_eq!(found, want);
    assert!(
        both.iter()
            .all(|i| i["name"].as_str().unwrap().starts_with('吴'))
    );
    // With the region filter: Wenzhou only.
    let wenzhou = items(
        &t,
        &t.admin,
        "/api/v1/model-workers?q=%E5%90%B4&city=330300",
    )
    .await;
    assert_eq!(ids(&wenzhou, "model_worker_id"), vec![wu_laihong.clone()]);
    // Spaces and full-width spaces are ignored: "吴　来" finds 吴来红.
    let spaced = items(
        &t,
        &t.admin,
        "/api/v1/model-workers?q=%E5%90%B4%E3%80%80%20%E6%9D%A5",
    )
    .await;
    assert_eq!(ids(&spaced, "model_worker_id"), vec![wu_laihong.clone()]);
    // Paging: one a page, the cursor leads to the other, and the last page has no cursor.
    let first: Value = t
        .get(&t.admin, "/api/v1/model-workers?q=%E5%90%B4&limit=1")
        .await
        .json()
        .await
        .unwrap();
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = t
        .get(
            &t.admin,
            &format!("/api/v1/model-workers?q=%E5%90%B4&limit=1&cursor={cursor}"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(second["next_cursor"].is_null(), "{second}");
    let mut paged = ids(first["items"].as_array().unwrap(), "model_worker_id");
    paged.extend(ids(second["items"].as_array().unwrap(), "model_worker_id"));
    paged.sort();
    assert_eq!(paged, want);
    // Directors by name (江力勤, not 蒋晓萌), and pairings by either person's name.
    let directors = items(&t, &t.admin, "/api/v1/directors?q=%E6%B1%9F%E5%8A%9B").await;
    assert_eq!(
        ids(&directors, "director_id"),
        vec![demo::directors::JIANG_LIQIN.0.to_string()]
    );
    let by_worker = items(
        &t,
        &t.admin,
        "/api/v1/pairings?as_of=2021-10-31&q=%E5%90%B4%E6%9D%A5%E7%BA%A2",
    )
    .await;
    let by_director = items(
        &t,
        &t.admin,
        "/api/v1/pairings?as_of=2021-10-31&q=%E9%82%A2%E5%A2%9E%E7%A6%8F",
    )
    .await;
    assert_eq!(by_worker.len(), 1, "{by_worker:?}");
    assert_eq!(
        ids(&by_worker, "pairing_id"),
        ids(&by_director, "pairing_id")
    );
    assert_eq!(by_worker[0]["model_worker_id"], json!(wu_laihong));
    // Someone registered after the searches above is found once the dashboards have applied
    // the registration: rows a search keeps are for one version of the read models only.
    let res = t
        .post(
            &t.admin,
            "RegisterModelWorker",
            json!({ "model_worker_id": uuid::Uuid::now_v7(), "honour": "provincial_model_worker",
                    "region_code": "330302", "name": "吴新来" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while items(&t, &t.admin, "/api/v1/model-workers?q=%E5%90%B4")
        .await
        .len()
        != 3
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the new model worker is never found"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Nobody is called that: an empty list, not an error.
    assert!(
        items(
            &t,
            &t.admin,
            "/api/v1/model-workers?q=%E4%B8%8D%E5%AD%98%E5%9C%A8"
        )
        .await
        .is_empty()
    );
}

async fn a_name_search_stays_within_the_roles_reach(h: &Harness) {
    let t = spawn(h).await;
    // Auditors and integrations read no names, so they may not search by one: 403, not an
    // empty list that would read as "nobody is called that".
    let auditor = t.token(Role::Auditor, None).await;
    let integration = t.token(Role::Integration, None).await;
    for path in [
        "/api/v1/model-workers",
        "/api/v1/directors",
        "/api/v1/pairings",
    ] {
        problem(
            t.get(&auditor, &format!("{path}?q=%E5%90%B4")).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
        problem(
            t.get(&integration, &format!("{path}?q=%E5%90%B4")).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
        // Without q the auditor's lists still answer (names redacted).
        assert_eq!(
            t.get(&auditor, path).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }
    // A director (邢增福, paired with 吴来红) finds their own model worker and nobody else's,
    // even by another person's exact name.
    let director = t
        .token(Role::Director, Some(demo::directors::XING_ZENGFU.uuid()))
        .await;
    let own = items(&t, &director, "/api/v1/model-workers?q=%E5%90%B4").await;
    assert_eq!(
        ids(&own, "model_worker_id"),
        vec![demo::workers::WU_LAIHONG.0.to_string()]
    );
    assert!(
        items(
            &t,
            &director,
            "/api/v1/model-workers?q=%E5%90%B4%E6%A0%B9%E5%BE%B7"
        )
        .await
        .is_empty()
    );
    let pairs = items(
        &t,
        &director,
        "/api/v1/pairings?as_of=2021-10-31&q=%E9%82%A2",
    )
    .await;
    assert_eq!(pairs.len(), 1);
    // 周宁芝 is another director, paired with 吴根德.
    assert!(
        items(
            &t,
            &director,
            "/api/v1/pairings?as_of=2021-10-31&q=%E5%91%A8%E5%AE%81%E8%8A%9D"
        )
        .await
        .is_empty()
    );
}

async fn a_search_text_that_is_not_a_name_is_refused_without_echoing_it(h: &Harness) {
    let t = spawn(h).await;
    let long = "%E9%95%BF".repeat(33);
    for (q, shown) in [
        ("", ""),
        ("%20%20", ""),
        ("%E3%80%80", ""),
        ("%E5%90%B4%0A", "吴"),
        ("%E5%90%B4%E2%80%AE%E6%9D%A5", "吴"),
        ("%E5%90%B4%00", "吴"),
        (long.as_str(), "长长长"),
    ] {
        for path in [
            "/api/v1/model-workers",
            "/api/v1/directors",
            "/api/v1/pairings",
        ] {
            let body = problem(
                t.get(&t.admin, &format!("{path}?q={q}")).await,
                StatusCode::BAD_REQUEST,
                "invalid_query",
            )
            .await;
            if !shown.is_empty() {
                assert!(!body.to_string().contains(shown), "{body}");
            }
        }
    }
    // Attack: a name given twice (which one would win?) and bytes that are not UTF-8 (the
    // query string decoder turns them into U+FFFD, and such a search once answered 200).
    for path in [
        "/api/v1/model-workers",
        "/api/v1/directors",
        "/api/v1/pairings",
    ] {
        for query in ["q=%E5%90%B4&q=%E5%BC%A0", "q=%FF%FE", "q=%E5%90"] {
            problem(
                t.get(&t.admin, &format!("{path}?{query}")).await,
                StatusCode::BAD_REQUEST,
                "invalid_query",
            )
            .await;
        }
    }
    // Exactly 32 characters is a search (that finds nobody).
    let ok = "%E9%95%BF".repeat(32);
    assert!(
        items(&t, &t.admin, &format!("/api/v1/model-workers?q={ok}"))
            .await
            .is_empty()
    );
}

async fn an_erased_person_never_matches_a_name_search(h: &Harness) {
    let t = spawn(h).await;
    let path = "/api/v1/model-workers?q=%E5%BC%A0%E6%A0%B9%E4%BB%99"; // 张根仙
    let before = items(&t, &t.admin, path).await;
    assert_eq!(
        ids(&before, "model_worker_id"),
        vec![demo::workers::ZHANG_GENXIAN.0.to_string()]
    );
    let head = t.app.store().head().await.unwrap().position;
    let res = t
        .post(
            &t.admin,
            "ErasePersonalData",
            json!({ "subject_id": demo::workers::ZHANG_GENXIAN.0, "legal_basis": "subject_request" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    // At once (the index was filled before the erasure), whether or not the dashboards have
    // applied the erasure yet, ...
    assert!(items(&t, &t.admin, path).await.is_empty());
    // ... in the pairings (by the model worker's name) too, ...
    assert!(
        items(
            &t,
            &t.admin,
            "/api/v1/pairings?as_of=2021-10-31&q=%E5%BC%A0%E6%A0%B9%E4%BB%99"
        )
        .await
        .is_empty()
    );
    // ... and in a replay of the log from before the erasure: the key is gone.
    assert!(
        items(&t, &t.admin, &format!("{path}&as_of_position={head}"))
            .await
            .is_empty()
    );
    // The person is still listed without a search, as erased.
    let all = items(&t, &t.admin, "/api/v1/model-workers?limit=500").await;
    let row = all
        .iter()
        .find(|i| i["model_worker_id"] == json!(demo::workers::ZHANG_GENXIAN.0))
        .unwrap();
    assert_eq!(row["name"], json!({ "erased": true }));
}

async fn every_role_reads_the_region_table_for_pickers(h: &Harness) {
    let t = spawn(h).await;
    let director = t
        .token(Role::Director, Some(demo::directors::XING_ZENGFU.uuid()))
        .await;
    let auditor = t.token(Role::Auditor, None).await;
    let integration = t.token(Role::Integration, None).await;
    for token in [&t.admin, &director, &auditor, &integration] {
        let all = items(&t, token, "/api/v1/divisions").await;
        let find = |code: &str| all.iter().find(|d| d["code"] == json!(code)).cloned();
        assert_eq!(
            find("330100").unwrap(),
            json!({ "code": "330100", "name": "杭州市", "level": "prefecture", "parent_code": "330000" })
        );
        assert_eq!(find("330825").unwrap()["name"], json!("龙游县"));
        assert_eq!(find("330825").unwrap()["parent_code"], json!("330800"));
        assert_eq!(find("330000").unwrap()["parent_code"], json!(null));
        // Every listed code is one a command accepts, and none is retired.
        for d in &all {
            let code: caretrail_domain::RegionCode = d["code"].as_str().unwrap().parse().unwrap();
            assert!(!code.is_retired(), "{d}");
        }
    }
    assert_eq!(
        t.client
            .get(format!("{}/api/v1/divisions", t.base))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
}
