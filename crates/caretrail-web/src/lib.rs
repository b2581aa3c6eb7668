//! caretrail's web page: one HTML page with a little vanilla JavaScript and CSS, embedded in the
//! binary so `caretrail serve` needs no other server, no CDN and no build step.
//!
//! [`routes`] serves the page at `/` and `/login` (the login URL carries the token in its
//! fragment, which the browser never sends to the server) and the assets under `/assets/`.
//! The page talks to the JSON API under `/api/v1` with the token as a bearer header, like any
//! other client; it has no privileges of its own.
//!
//! Caching: the page is `no-cache` (it is tiny and names the assets), and it names every asset
//! with `?v=<hash of all assets>`, so assets can be cached for a year and a new binary's page
//! still loads its own assets.
//!
//! Architecture invariant: this crate knows nothing of the domain, the store or the API's
//! types; it is files and headers. Everything the page shows comes from the public API.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const INDEX_HTML: &str = include_str!("../assets/index.html");

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/app.js"),
    },
    Asset {
        name: "i18n.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/i18n.js"),
    },
    Asset {
        name: "merkle.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/merkle.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../assets/app.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../assets/favicon.svg"),
    },
];

/// FNV-1a over every asset, computed at compile time: a version tag that changes whenever any
/// asset does (a cache-busting tag, not a security measure).
const VERSION: u64 = {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < ASSETS.len() {
        let body = ASSETS[i].body;
        let mut j = 0;
        while j < body.len() {
            h ^= body[j] as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
            j += 1;
        }
        i += 1;
    }
    h
};

/// The page with its asset URLs versioned.
static PAGE: LazyLock<String> =
    LazyLock::new(|| INDEX_HTML.replace("{{v}}", &format!("{VERSION:016x}")));

/// The page may load only its own scripts and styles and talk only to its own origin; the
/// token lives in sessionStorage, so a script injected from elsewhere must not run.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page's routes, for any router state (the page needs none).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(page))
        .route("/login", get(page))
        .route("/assets/{name}", get(asset))
}

fn common_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The login URL's fragment holds a token; no page should learn where a user came from.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

async fn page() -> Response {
    let mut res = (StatusCode::OK, PAGE.as_str()).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    common_headers(h);
    res
}

async fn asset(Path(name): Path<String>, req_headers: HeaderMap) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let etag = format!("\"{VERSION:016x}\"");
    let fresh = req_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, a.body).into_response()
    };
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    // Safe to keep: the page asks for assets by version, so a changed asset has a new URL.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    common_headers(h);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_every_script_and_style_with_the_version() {
        let v = format!("{VERSION:016x}");
        for name in ["app.js", "i18n.js", "merkle.js", "app.css", "favicon.svg"] {
            assert!(
                PAGE.contains(&format!("/assets/{name}?v={v}")),
                "{name} is not linked with its version"
            );
        }
        assert!(!PAGE.contains("{{v}}"));
    }

    #[test]
    fn every_view_is_a_section_of_its_own() {
        // A view nested in another is hidden with it: a merge once left the reports view
        // unclosed, and the import view inside it could never be shown.
        let mut open: Vec<&str> = Vec::new();
        let mut views = 0;
        let mut rest = INDEX_HTML;
        while let Some(i) = rest
            .find("<section")
            .into_iter()
            .chain(rest.find("</section>"))
            .min()
        {
            if rest[i..].starts_with("</section>") {
                assert!(open.pop().is_some(), "a </section> closes nothing");
                rest = &rest[i + "</section>".len()..];
            } else {
                let tag_end = rest[i..].find('>').map_or(rest.len(), |e| i + e);
                let tag = &rest[i..tag_end];
                if tag.contains("class=\"view\"") {
                    assert!(
                        !open.iter().any(|t| t.contains("class=\"view\"")),
                        "{tag} is inside another view"
                    );
                    views += 1;
                }
                open.push(tag);
                rest = &rest[tag_end..];
            }
        }
        assert!(open.is_empty(), "unclosed: {open:?}");
        assert!(views >= 10, "{views} views");
    }

    #[test]
    fn the_page_loads_nothing_from_another_origin() {
        // The machine that runs caretrail may have no internet: no CDN, no web fonts.
        for a in ASSETS.iter().map(|a| a.body).chain([INDEX_HTML.as_bytes()]) {
            let text = String::from_utf8_lossy(a);
            assert!(!text.contains("https://"), "an asset refers to https://");
            assert!(!text.contains("//cdn"), "an asset refers to a CDN");
        }
    }
}
