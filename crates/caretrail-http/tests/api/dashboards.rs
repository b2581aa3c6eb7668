//! The dashboards answer with the article's numbers and respect each role.

use caretrail_domain::demo;
use caretrail_http::Role;
use caretrail_store::testing::Harness;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

caretrail_store::both_backends!(
    dashboards_answer_with_the_articles_numbers_and_respect_roles,
    a_directors_pairings_and_model_workers_are_filtered_in_the_query_not_on_a_page,
    a_date_range_that_ends_before_it_starts_is_refused_not_answered_empty,
);

/// A reversed range once answered an empty list (red team, last round): "nothing happened"
/// where the question was empty. Gifts, visits and issues refuse it with `invalid_query`;
/// the gifts dashboard says which end was its default.
async fn a_date_range_that_ends_before_it_starts_is_refused_not_answered_empty(h: &Harness) {
    let t = spawn(h).await;
    for path in [
        "/api/v1/dashboard/gifts?from=2021-12-01&to=2021-10-01",
        "/api/v1/visits?from=2021-10-31&to=2021-10-01",
        "/api/v1/issues?raised_from=2021-10-31&raised_to=2021-10-01",
    ] {
        let p = problem(
            t.get(&t.admin, path).await,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        )
        .await;
        assert!(
            p["detail"].as_str().unwrap().contains("is after"),
            "{path}: {p}"
        );
    }
    let p = problem(
        t.get(
            &t.admin,
            "/api/v1/dashboard/gifts?as_of=2021-10-31&to=2020-06-30",
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("by default"), "{p}");
    // Equal ends are a one-day range, not a reversed one.
    let res = t
        .get(&t.admin, "/api/v1/visits?from=2021-10-13&to=2021-10-13")
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

async fn dashboards_answer_with_the_articles_numbers_and_respect_roles(h: &Harness) {
    let t = spawn(h).await;
    // What a person counts by hand from the article's visits (`demo.rs`): nine visits in October 2021, eight
    // pairings, nine model workers in hardship (one visited ad hoc), cash on every visit.
    let o: Value = t
        .get(&t.admin, "/api/v1/dashboard/overview?as_of=2021-10-31")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(o["visits_this_month"], json!(9), "{o}");
    assert_eq!(o["active_pairings"], json!(8));
    assert_eq!(o["model_workers_in_hardship"], json!(9));
    assert_eq!(
        o["cash_yuan_this_year"],
        json!(format!("{}.00", 9 * demo::EXAMPLE_CASH_YUAN))
    );
    assert_eq!(o["flowers_given_this_year"], json!(9));
    // Eight months later every pairing is overdue (183 days after mid-October 2021).
    let overdue: Value = t
        .get(
            &t.admin,
            "/api/v1/pairings?as_of=2022-06-30&status=overdue&limit=100",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(overdue["items"].as_array().unwrap().len(), 8, "{overdue}");
    let days: Vec<i64> = overdue["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["days_overdue"].as_i64().unwrap())
        .collect();
    assert!(
        days.windows(2).all(|w| w[0] >= w[1]),
        "sorted by days overdue: {days:?}"
    );
    // Paging with the cursor.
    let first: Value = t
        .get(&t.admin, "/api/v1/pairings?as_of=2022-06-30&limit=5")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["items"].as_array().unwrap().len(), 5);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = t
        .get(
            &t.admin,
            &format!("/api/v1/pairings?as_of=2022-06-30&limit=5&cursor={cursor}"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["items"].as_array().unwrap().len(), 3);
    assert!(second["next_cursor"].is_null());
    problem(
        t.get(&t.admin, "/api/v1/pairings?cursor=bogus").await,
        StatusCode::BAD_REQUEST,
        "invalid_cursor",
    )
    .await;
    // Gifts per city: Hangzhou had three visits.
    let gifts: Value = t
        .get(
            &t.admin,
            "/api/v1/dashboard/gifts?from=2021-01-01&to=2021-12-31&group_by=city",
        )
        .await
        .json()
        .await
        .unwrap();
    let hangzhou = gifts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == json!("330100"))
        .unwrap();
    assert_eq!(hangzhou["visits"], json!(3));
    // The auditor's replay: as of an early position nothing had been visited yet.
    let early: Value = t
        .get(
            &t.admin,
            "/api/v1/dashboard/overview?as_of=2021-10-31&as_of_position=40",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(early["visits_this_month"], json!(0));
    problem(
        t.get(&t.admin, "/api/v1/dashboard/overview?as_of_position=999999")
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    // Model worker file: names for the administrator, redacted for the auditor.
    let yu = demo::workers::YU_PEIYE.uuid();
    let file: Value = t
        .get(&t.admin, &format!("/api/v1/model-workers/{yu}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(file["name"], json!("俞培叶"));
    assert!(!file["timeline"]["items"].as_array().unwrap().is_empty());
    let auditor = t.token(Role::Auditor, None).await;
    let redacted: Value = t
        .get(&auditor, &format!("/api/v1/model-workers/{yu}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(redacted["name"], json!({ "redacted": true }));
    // A director sees their own pairing and model worker only.
    let director = t
        .token(Role::Director, Some(demo::directors::FENG_YALI.uuid()))
        .await;
    let mine: Value = t
        .get(&director, "/api/v1/pairings?as_of=2022-06-30")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        t.get(&director, &format!("/api/v1/model-workers/{yu}"))
            .await
            .status(),
        StatusCode::OK
    );
    let wang = demo::workers::WANG_MEIWEN.uuid();
    problem(
        t.get(&director, &format!("/api/v1/model-workers/{wang}"))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    problem(
        t.get(&director, "/api/v1/dashboard/overview").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let integration = t.token(Role::Integration, None).await;
    problem(
        t.get(&integration, "/api/v1/dashboard/overview").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // The model workers and visits lists.
    let workers: Value = t
        .get(&t.admin, "/api/v1/model-workers?in_hardship=true&limit=100")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(workers["items"].as_array().unwrap().len(), 9, "{workers}");
    assert!(
        workers["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["name"] == json!("俞培叶"))
    );
    let unpaired: Value = t
        .get(&t.admin, "/api/v1/model-workers?paired=false")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        unpaired["items"].as_array().unwrap().len(),
        1,
        "陈良松 was visited ad hoc"
    );
    let visits: Value = t
        .get(
            &t.admin,
            "/api/v1/visits?from=2021-10-01&to=2021-10-31&city=330300",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        visits["items"].as_array().unwrap().len(),
        2,
        "two Wenzhou visits: {visits}"
    );
    let dates: Vec<&str> = visits["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["visited_on"].as_str().unwrap())
        .collect();
    assert!(dates.iter().all(|d| *d == "2021-10-21"));
    let own: Value = t
        .get(&director, "/api/v1/visits")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        own["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["director_id"] == json!(demo::directors::FENG_YALI.uuid()))
    );
    let own_workers: Value = t
        .get(&director, "/api/v1/model-workers")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(own_workers["items"].as_array().unwrap().len(), 1);
    // Regions and the issues board answer.
    let regions: Value = t
        .get(&t.admin, "/api/v1/regions?as_of=2021-10-31")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        regions["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["region_name"] == json!("衢州市"))
    );
    assert_eq!(
        t.get(&t.admin, "/api/v1/issues?as_of=2021-10-31")
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        t.get(&t.admin, "/api/v1/dashboard/issues?as_of=2021-10-31")
            .await
            .status(),
        StatusCode::OK
    );
}

/// Review finding: `/pairings` for a director, or with an administrator's `director_id`
/// filter, and `/model-workers` for a director took a page of everyone's rows and then kept
/// the matching ones, so with `limit=1` a director whose pairing did not sort first saw an
/// empty list. The filters are now part of the query: every director sees their own pairing
/// and model worker at `limit=1`, and an administrator's filter finds any director's pairing.
async fn a_directors_pairings_and_model_workers_are_filtered_in_the_query_not_on_a_page(
    h: &Harness,
) {
    let t = spawn(h).await;
    let all: Value = t
        .get(&t.admin, "/api/v1/pairings?as_of=2022-06-30&limit=100")
        .await
        .json()
        .await
        .unwrap();
    let pairings = all["items"].as_array().unwrap();
    assert_eq!(pairings.len(), 8, "{all}");
    for p in pairings {
        let director = p["director_id"].as_str().unwrap();
        let worker = p["model_worker_id"].as_str().unwrap();
        let filtered: Value = t
            .get(
                &t.admin,
                &format!("/api/v1/pairings?as_of=2022-06-30&limit=1&director_id={director}"),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(filtered["items"].as_array().unwrap().len(), 1, "{filtered}");
        assert_eq!(filtered["items"][0]["director_id"], json!(director));
        let token = t
            .token(Role::Director, Some(director.parse().unwrap()))
            .await;
        let mine: Value = t
            .get(&token, "/api/v1/pairings?as_of=2022-06-30&limit=1")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(mine["items"].as_array().unwrap().len(), 1, "{mine}");
        assert_eq!(mine["items"][0]["director_id"], json!(director));
        let workers: Value = t
            .get(&token, "/api/v1/model-workers?limit=1")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(workers["items"].as_array().unwrap().len(), 1, "{workers}");
        assert_eq!(workers["items"][0]["model_worker_id"], json!(worker));
    }
}
