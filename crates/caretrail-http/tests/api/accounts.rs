//! Accounts that sign in: passwords, the session cookie and its flags, CSRF, lockout, the
//! sessions that end on sign-out everywhere, a password change, a reset or a disable, role
//! changes, a director account's reach, and tokens managed over HTTP; on both backends.

use std::time::Duration;

use caretrail_store::testing::Harness;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::*;

caretrail_store::both_backends!(
    a_wrong_password_and_an_unknown_name_get_the_same_answer,
    sign_in_sets_an_httponly_strict_cookie_and_csrf_guards_every_change,
    repeated_failures_lock_the_account_until_time_or_a_reset,
    sessions_end_on_sign_out_everywhere_password_change_and_disable,
    a_role_change_takes_effect_and_a_director_account_sees_only_its_pairing,
    administrators_list_create_and_revoke_tokens,
    a_session_ends_after_its_idle_time,
);

const PASSWORD: &str = "长城-correct-horse-7";

impl TestApp {
    /// `POST /api/v1/accounts` as the administrator; answers the account.
    async fn create_account(&self, username: &str, role: &str, director: Option<Uuid>) -> Value {
        let mut body = json!({ "username": username, "password": PASSWORD, "role": role });
        if let Some(d) = director {
            body["director_id"] = json!(d);
        }
        let res = self
            .client
            .post(format!("{}/api/v1/accounts", self.base))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json().await.unwrap()
    }

    async fn sign_in(&self, username: &str, password: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/api/v1/session", self.base))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .unwrap()
    }

    /// Signs in; answers the cookie pair (`name=value`) and the CSRF token.
    async fn session(&self, username: &str, password: &str) -> (String, String) {
        let res = self.sign_in(username, password).await;
        assert_eq!(res.status(), StatusCode::OK);
        let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
        let pair = cookie.split(';').next().unwrap().to_owned();
        let body: Value = res.json().await.unwrap();
        (pair, body["csrf_token"].as_str().unwrap().to_owned())
    }

    /// A request with the session cookie (and the CSRF token when given).
    async fn with_cookie(
        &self,
        method: reqwest::Method,
        path: &str,
        cookie: &str,
        csrf: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("cookie", cookie);
        if let Some(t) = csrf {
            req = req.header("x-csrf-token", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }
}

fn contact(pairing: Uuid) -> Value {
    json!({ "contact_id": Uuid::now_v7(), "pairing_id": pairing, "on": "2021-10-30",
            "channel": "phone" })
}

async fn a_wrong_password_and_an_unknown_name_get_the_same_answer(h: &Harness) {
    let t = spawn(h).await;
    t.create_account("li.lei", "auditor", None).await;
    let wrong = t.sign_in("li.lei", "not-the-password").await;
    let wrong = problem(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let unknown = t.sign_in("nobody.here", "not-the-password").await;
    let unknown = problem(unknown, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(
        wrong, unknown,
        "the answers must not tell which names exist"
    );
    // Case and surrounding spaces of the name do not matter; the password does.
    let ok = t.sign_in("  LI.Lei ", PASSWORD).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["role"], json!("auditor"));
    assert!(body.get("password").is_none() && !body.to_string().contains(PASSWORD));
    // A name that is not a user name at all is just as unknown; odd bytes are not an error.
    let odd = t.sign_in("\u{202e}admin\u{0}", "x").await;
    problem(odd, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    // Finding: a password of 200 KiB was hashed in full by every request. It is refused as
    // wrong at once, with the same answer.
    let huge = t.sign_in("li.lei", &"x".repeat(200 * 1024)).await;
    problem(huge, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    // Not JSON, or not a sign-in: 4xx problem+json.
    let res = t
        .client
        .post(format!("{}/api/v1/session", t.base))
        .header("content-type", "application/json")
        .body("{\"username\":\"a\",\"username\":\"b\",\"password\":\"c\"}")
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::BAD_REQUEST, "duplicate_json_key").await;
}

async fn sign_in_sets_an_httponly_strict_cookie_and_csrf_guards_every_change(h: &Harness) {
    let t = spawn(h).await;
    t.create_account("han.meimei", "admin", None).await;
    let res = t.sign_in("han.meimei", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("caretrail_session="), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{flag} missing: {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP: no Secure flag ({cookie})"
    );
    assert_eq!(res.headers()["cache-control"], "no-store");
    let (pair, csrf) = t.session("han.meimei", PASSWORD).await;
    // Reading needs no CSRF token.
    let me = t
        .with_cookie(reqwest::Method::GET, "/api/v1/me", &pair, None, None)
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["role"], json!("admin"));
    // A change without the token, with another session's token, or from another site: 403.
    let path = "/api/v1/commands/RecordContact";
    let pairing = caretrail_domain::demo::pairing(1).uuid();
    let missing = t
        .with_cookie(
            reqwest::Method::POST,
            path,
            &pair,
            None,
            Some(contact(pairing)),
        )
        .await;
    problem(missing, StatusCode::FORBIDDEN, "csrf_token_missing").await;
    let (_, other_csrf) = t.session("han.meimei", PASSWORD).await;
    let wrong = t
        .with_cookie(
            reqwest::Method::POST,
            path,
            &pair,
            Some(&other_csrf),
            Some(contact(pairing)),
        )
        .await;
    problem(wrong, StatusCode::FORBIDDEN, "csrf_token_invalid").await;
    let cross = t
        .client
        .post(format!("{}{path}", t.base))
        .header("cookie", &pair)
        .header("x-csrf-token", &csrf)
        .header("origin", "https://evil.example")
        .json(&contact(pairing))
        .send()
        .await
        .unwrap();
    problem(cross, StatusCode::FORBIDDEN, "cross_site_request").await;
    let site = t
        .client
        .post(format!("{}{path}", t.base))
        .header("cookie", &pair)
        .header("x-csrf-token", &csrf)
        .header("sec-fetch-site", "cross-site")
        .json(&contact(pairing))
        .send()
        .await
        .unwrap();
    problem(site, StatusCode::FORBIDDEN, "cross_site_request").await;
    // With the token (and the page's own origin) the command is recorded, as the account.
    let ok = t
        .client
        .post(format!("{}{path}", t.base))
        .header("cookie", &pair)
        .header("x-csrf-token", &csrf)
        .header("origin", &t.base)
        .json(&contact(pairing))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ok.status(),
        StatusCode::CREATED,
        "{}",
        ok.text().await.unwrap()
    );
    // A bearer token needs no CSRF token: it is no ambient credential.
    let bearer = t.post(&t.admin, "RecordContact", contact(pairing)).await;
    assert_eq!(bearer.status(), StatusCode::CREATED);
    // A made-up cookie is not a session.
    let fake = t
        .with_cookie(
            reqwest::Method::GET,
            "/api/v1/me",
            "caretrail_session=AAAA",
            None,
            None,
        )
        .await;
    problem(fake, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

/// The cookie is Secure with the __Host- prefix when the public URL is https.
#[tokio::test]
async fn under_https_the_cookie_is_secure_with_the_host_prefix() {
    let Some(h) = caretrail_store::testing::sqlite().await else {
        return;
    };
    let t = spawn(&h).await;
    t.tokens.sessions.set_public_url(
        caretrail_http::session::PublicUrl::parse("https://care.example.org").unwrap(),
    );
    t.create_account("secure.one", "auditor", None).await;
    let res = t.sign_in("secure.one", PASSWORD).await;
    // The sign-in came from no browser (no Origin), so it is let through.
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-caretrail_session="), "{cookie}");
    for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{flag} missing: {cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    // A sign-in posted from another origin (login CSRF) is refused.
    let res = t
        .client
        .post(format!("{}/api/v1/session", t.base))
        .header("origin", "http://care.example.org")
        .json(&json!({ "username": "secure.one", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::FORBIDDEN, "cross_site_request").await;
}

async fn repeated_failures_lock_the_account_until_time_or_a_reset(h: &Harness) {
    let t = spawn(h).await;
    // One address may try SIGNIN_BURST sign-ins at once, across every name. Sent together: one
    // after another, each waits for its password hash, and on a loaded machine the bucket
    // refills (one a second) before the last one arrives; each under its own name, so no
    // name's lockout answers 429 in the limiter's place (CI saw both).
    let burst = caretrail_http::session::SIGNIN_BURST as usize;
    let names: Vec<String> = (0..=burst).map(|i| format!("someone.{i}")).collect();
    let answers = futures::future::join_all(names.iter().map(|n| t.sign_in(n, "x"))).await;
    let limited: Vec<_> = answers
        .into_iter()
        .filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(
        !limited.is_empty(),
        "{} sign-ins at once from one address were all let through",
        burst + 1
    );
    for res in limited {
        assert!(res.headers().contains_key("retry-after"));
        problem(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    }
    // The rest of this test signs in more often than that.
    t.tokens.sessions.set_signin_limit(1000, 1000);
    t.tokens.sessions.set_timing(
        Duration::from_secs(2),
        caretrail_http::session::IDLE_TIMEOUT,
    );
    let account = t.create_account("wang.fang", "auditor", None).await;
    let id = account["account_id"].as_str().unwrap().to_owned();
    for _ in 0..caretrail_http::session::LOCK_AFTER - 1 {
        let res = t.sign_in("wang.fang", "wrong-password").await;
        problem(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let res = t.sign_in("wang.fang", "wrong-password").await;
    assert!(res.headers().contains_key("retry-after"));
    problem(res, StatusCode::TOO_MANY_REQUESTS, "account_locked").await;
    // Locked: even the right password is refused, and costs no hashing.
    let res = t.sign_in("wang.fang", PASSWORD).await;
    problem(res, StatusCode::TOO_MANY_REQUESTS, "account_locked").await;
    // The administrator sees the lock (read at once: the test's lock lasts two seconds).
    let listed: Value = t
        .get(&t.admin, "/api/v1/accounts")
        .await
        .json()
        .await
        .unwrap();
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account_id"] == json!(id))
        .unwrap();
    assert!(row["locked_until"].is_string(), "{row}");
    // An unknown name locks the same way, so the lockout does not tell which names exist.
    for _ in 0..caretrail_http::session::LOCK_AFTER - 1 {
        let res = t.sign_in("ghost.user", "wrong-password").await;
        problem(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let res = t.sign_in("ghost.user", "wrong-password").await;
    problem(res, StatusCode::TOO_MANY_REQUESTS, "account_locked").await;
    // The lock lifts by itself.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        t.sign_in("wang.fang", PASSWORD).await.status(),
        StatusCode::OK
    );
    // Locked again, then an administrator's reset unlocks at once, with the new password.
    for _ in 0..caretrail_http::session::LOCK_AFTER {
        t.sign_in("wang.fang", "wrong-password").await;
    }
    let res = t.sign_in("wang.fang", PASSWORD).await;
    problem(res, StatusCode::TOO_MANY_REQUESTS, "account_locked").await;
    let res = t
        .client
        .post(format!("{}/api/v1/accounts/{id}/password", t.base))
        .bearer_auth(&t.admin)
        .json(&json!({ "password": "a-new-password-42" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        t.sign_in("wang.fang", "a-new-password-42").await.status(),
        StatusCode::OK
    );
    // The reset is in the log: that it happened and by whom, never the password.
    let stream: Value = t
        .get(&t.admin, &format!("/api/v1/streams/account-{id}"))
        .await
        .json()
        .await
        .unwrap();
    let text = stream.to_string();
    assert!(
        text.contains("AccountPasswordSet") && text.contains("reset"),
        "{text}"
    );
    assert!(
        !text.contains("a-new-password-42") && !text.contains("argon2"),
        "{text}"
    );
}

async fn sessions_end_on_sign_out_everywhere_password_change_and_disable(h: &Harness) {
    let t = spawn(h).await;
    t.tokens.set_cache_ttl(Duration::from_millis(1));
    let account = t.create_account("zhao.lei", "auditor", None).await;
    let id = account["account_id"].as_str().unwrap().to_owned();
    let me = |pair: String| {
        let t = &t;
        async move {
            t.with_cookie(reqwest::Method::GET, "/api/v1/me", &pair, None, None)
                .await
                .status()
        }
    };
    // Sign out ends this session only.
    let (a, a_csrf) = t.session("zhao.lei", PASSWORD).await;
    let (b, b_csrf) = t.session("zhao.lei", PASSWORD).await;
    let out = t
        .with_cookie(
            reqwest::Method::DELETE,
            "/api/v1/session",
            &a,
            Some(&a_csrf),
            None,
        )
        .await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(me(a.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(b.clone()).await, StatusCode::OK);
    // Sign out everywhere ends every one.
    let (c, _) = t.session("zhao.lei", PASSWORD).await;
    let all = t
        .with_cookie(
            reqwest::Method::POST,
            "/api/v1/session/end-all",
            &b,
            Some(&b_csrf),
            None,
        )
        .await;
    assert_eq!(all.status(), StatusCode::NO_CONTENT);
    assert_eq!(me(b.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(c.clone()).await, StatusCode::UNAUTHORIZED);
    // A password change needs the current password, ends the others, and renews this one.
    let (d, d_csrf) = t.session("zhao.lei", PASSWORD).await;
    let (e, _) = t.session("zhao.lei", PASSWORD).await;
    let wrong = t
        .with_cookie(
            reqwest::Method::POST,
            "/api/v1/session/password",
            &d,
            Some(&d_csrf),
            Some(json!({ "current_password": "guess-guess", "new_password": "another-pass-99" })),
        )
        .await;
    problem(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let weak = t
        .with_cookie(
            reqwest::Method::POST,
            "/api/v1/session/password",
            &d,
            Some(&d_csrf),
            Some(json!({ "current_password": PASSWORD, "new_password": "short" })),
        )
        .await;
    assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let changed = t
        .with_cookie(
            reqwest::Method::POST,
            "/api/v1/session/password",
            &d,
            Some(&d_csrf),
            Some(json!({ "current_password": PASSWORD, "new_password": "another-pass-99" })),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    let renewed = changed.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(me(d.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(e.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(renewed.clone()).await, StatusCode::OK);
    problem(
        t.sign_in("zhao.lei", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    // Disabling ends the sessions and refuses sign-in with the one answer; enabling restores.
    let disable = t
        .client
        .post(format!("{}/api/v1/accounts/{id}/disable", t.base))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(disable.status(), StatusCode::OK);
    assert_eq!(me(renewed).await, StatusCode::UNAUTHORIZED);
    problem(
        t.sign_in("zhao.lei", "another-pass-99").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let enable = t
        .client
        .post(format!("{}/api/v1/accounts/{id}/enable", t.base))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(enable.status(), StatusCode::OK);
    assert_eq!(
        t.sign_in("zhao.lei", "another-pass-99").await.status(),
        StatusCode::OK
    );
}

async fn a_role_change_takes_effect_and_a_director_account_sees_only_its_pairing(h: &Harness) {
    use caretrail_domain::demo::{directors, workers as model_workers};
    let t = spawn(h).await;
    t.tokens.set_cache_ttl(Duration::from_millis(1));
    let account = t
        .create_account("feng.yali", "director", Some(directors::FENG_YALI.uuid()))
        .await;
    let id = account["account_id"].as_str().unwrap().to_owned();
    let (pair, _) = t.session("feng.yali", PASSWORD).await;
    let own = format!("/api/v1/model-workers/{}", model_workers::YU_PEIYE.uuid());
    let res = t
        .with_cookie(reqwest::Method::GET, &own, &pair, None, None)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let other = format!(
        "/api/v1/model-workers/{}",
        model_workers::WANG_MEIWEN.uuid()
    );
    let res = t
        .with_cookie(reqwest::Method::GET, &other, &pair, None, None)
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // Another role: the session ends, and the next sign-in has the new role.
    let res = t
        .client
        .post(format!("{}/api/v1/accounts/{id}/role", t.base))
        .bearer_auth(&t.admin)
        .json(&json!({ "role": "auditor" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = t
        .with_cookie(reqwest::Method::GET, &own, &pair, None, None)
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let (pair, _) = t.session("feng.yali", PASSWORD).await;
    let me: Value = t
        .with_cookie(reqwest::Method::GET, "/api/v1/me", &pair, None, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], json!("auditor"));
    // Only administrators manage accounts; a director role needs its director.
    let res = t
        .with_cookie(reqwest::Method::GET, "/api/v1/accounts", &pair, None, None)
        .await;
    problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = t
        .client
        .post(format!("{}/api/v1/accounts/{id}/role", t.base))
        .bearer_auth(&t.admin)
        .json(&json!({ "role": "director" }))
        .send()
        .await
        .unwrap();
    problem(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "account_director_mismatch",
    )
    .await;
    // A taken name is refused and the first account is untouched.
    let res = t
        .client
        .post(format!("{}/api/v1/accounts", t.base))
        .bearer_auth(&t.admin)
        .json(&json!({ "username": "FENG.YALI", "password": PASSWORD, "role": "admin" }))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::CONFLICT, "username_taken").await;
    // A refused creation leaves no credentials behind: the name stays free.
    let res = t
        .client
        .post(format!("{}/api/v1/accounts", t.base))
        .bearer_auth(&t.admin)
        .json(&json!({ "username": "robot", "password": PASSWORD, "role": "integration" }))
        .send()
        .await
        .unwrap();
    problem(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "account_role_not_allowed",
    )
    .await;
    t.create_account("robot", "auditor", None).await;
}

async fn administrators_list_create_and_revoke_tokens(h: &Harness) {
    let t = spawn(h).await;
    t.tokens.set_cache_ttl(Duration::from_millis(1));
    let res = t
        .client
        .post(format!("{}/api/v1/tokens", t.base))
        .bearer_auth(&t.admin)
        .json(&json!({ "name": "报表脚本", "role": "auditor", "expires_in_days": 30 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let created: Value = res.json().await.unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    let token_id = created["token_id"].as_str().unwrap().to_owned();
    assert_eq!(t.get(&token, "/api/v1/me").await.status(), StatusCode::OK);
    let list: Value = t
        .get(&t.admin, "/api/v1/tokens")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|x| x["token_id"] == json!(token_id))
    );
    assert!(
        !list.to_string().contains(&token),
        "a list never shows a secret"
    );
    // Only administrators.
    problem(
        t.get(&token, "/api/v1/tokens").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let res = t
        .client
        .delete(format!("{}/api/v1/tokens/{token_id}", t.base))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        t.get(&token, "/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Finding: the schemathesis run revoked the very token it ran with, and every later request
    // was refused. A token cannot revoke itself over HTTP.
    let me: Value = t.get(&t.admin, "/api/v1/me").await.json().await.unwrap();
    let res = t
        .client
        .delete(format!(
            "{}/api/v1/tokens/{}",
            t.base,
            me["token_id"].as_str().unwrap()
        ))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::CONFLICT, "token_in_use").await;
    assert_eq!(t.get(&t.admin, "/api/v1/me").await.status(), StatusCode::OK);
    let res = t
        .client
        .delete(format!("{}/api/v1/tokens/{}", t.base, Uuid::now_v7()))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = t
        .client
        .post(format!("{}/api/v1/tokens", t.base))
        .bearer_auth(&t.admin)
        .json(&json!({ "name": "x", "role": "director" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

async fn a_session_ends_after_its_idle_time(h: &Harness) {
    let t = spawn(h).await;
    t.tokens.set_cache_ttl(Duration::from_millis(1));
    t.tokens
        .sessions
        .set_timing(caretrail_http::session::LOCK_FOR, Duration::from_secs(1));
    t.create_account("qian.li", "auditor", None).await;
    let (pair, _) = t.session("qian.li", PASSWORD).await;
    let me = t
        .with_cookie(reqwest::Method::GET, "/api/v1/me", &pair, None, None)
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let me = t
        .with_cookie(reqwest::Method::GET, "/api/v1/me", &pair, None, None)
        .await;
    problem(me, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}
