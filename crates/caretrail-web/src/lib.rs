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
//! Compression: the page and its text assets are gzipped once, on first request, at the best
//! level, and sent gzipped to every browser that accepts it (all do), so the first load
//! transfers about a quarter of the bytes (the target is ≤ 300 KB with the API's answers;
//! `benches/first_load.rs` measures it). gzip rather than Brotli: flate2 is already linked (the
//! XLSX reader and writer use it), with the same zlib-rs backend, so no new code is built.
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

/// gzip of `body` at the best level (made once per file; the files are embedded and fixed).
fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing into a Vec cannot fail.
    let _ = z.write_all(body);
    z.finish().unwrap_or_default()
}

/// Whether the request's `Accept-Encoding` takes gzip (a `gzip` or `*` coding whose quality
/// is not zero).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// A body as sent: gzipped when the client takes it (with the matching headers), otherwise
/// as it is. Either way the answer varies with `Accept-Encoding`.
fn encoded(
    req_headers: &HeaderMap,
    plain: &'static [u8],
    gzipped: &'static [u8],
) -> (Option<HeaderValue>, &'static [u8]) {
    if accepts_gzip(req_headers) {
        (Some(HeaderValue::from_static("gzip")), gzipped)
    } else {
        (None, plain)
    }
}

fn vary_and_encoding(headers: &mut HeaderMap, encoding: Option<HeaderValue>) {
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Some(e) = encoding {
        headers.insert(header::CONTENT_ENCODING, e);
    }
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

/// The page, gzipped.
static PAGE_GZ: LazyLock<Vec<u8>> = LazyLock::new(|| gzip(PAGE.as_bytes()));

/// Every asset gzipped, in [`ASSETS`]' order.
static ASSETS_GZ: LazyLock<Vec<Vec<u8>>> =
    LazyLock::new(|| ASSETS.iter().map(|a| gzip(a.body)).collect());

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

async fn page(req_headers: HeaderMap) -> Response {
    let (encoding, body) = encoded(&req_headers, PAGE.as_bytes(), PAGE_GZ.as_slice());
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    vary_and_encoding(h, encoding);
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
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let a = &ASSETS[i];
    let (encoding, body) = encoded(&req_headers, a.body, ASSETS_GZ[i].as_slice());
    // Each encoding is its own representation with its own strong validator.
    let etag = if encoding.is_some() {
        format!("\"{VERSION:016x}-gz\"")
    } else {
        format!("\"{VERSION:016x}\"")
    };
    let fresh = req_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, body).into_response()
    };
    let h = res.headers_mut();
    if fresh {
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    } else {
        vary_and_encoding(h, encoding);
    }
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
    fn gzip_is_chosen_only_when_the_client_takes_it() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            accepts_gzip(&h)
        };
        assert!(with("gzip, deflate, br, zstd"));
        assert!(with("br;q=1.0, GZIP;q=0.5"));
        assert!(with("*"));
        assert!(!with("gzip;q=0"));
        assert!(!with("gzip; q=0.0, br"));
        assert!(!with("identity"));
        assert!(!with("gzipx"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn every_gzipped_file_inflates_to_the_file() {
        use std::io::Read;
        let inflate = |z: &[u8]| {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(z)
                .read_to_end(&mut out)
                .unwrap();
            out
        };
        for (a, z) in ASSETS.iter().zip(ASSETS_GZ.iter()) {
            assert_eq!(inflate(z), a.body, "{}", a.name);
        }
        assert_eq!(inflate(&PAGE_GZ), PAGE.as_bytes());
        let app = ASSETS.iter().position(|a| a.name == "app.js").unwrap();
        assert!(
            ASSETS_GZ[app].len() * 3 < ASSETS[app].body.len(),
            "app.js compresses"
        );
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

    /// The keys of one language's table in `i18n.js` (`const NAME = { ... };`): a quoted
    /// string or a bare word followed by `:` outside a string value. A key given twice fails
    /// (the later one would silently win: a list once redefined "yes" in lower case).
    fn i18n_keys(name: &str) -> std::collections::BTreeSet<String> {
        let js = include_str!("../assets/i18n.js");
        let start = js
            .find(&format!("const {name} = {{"))
            .unwrap_or_else(|| panic!("no table {name}"));
        let body = &js[start..];
        let body = &body[..body.find("\n  };").unwrap_or(body.len())];
        let mut keys = std::collections::BTreeSet::new();
        for line in body.lines().skip(1) {
            let line = line.trim();
            if line.starts_with("//") {
                continue;
            }
            // Walk the line: after `{`, `,` or the line's start comes a key, then `:`, then a value.
            let mut rest = line;
            loop {
                rest = rest.trim_start_matches([',', ' ']);
                if rest.is_empty() {
                    break;
                }
                let (key, after) = if let Some(r) = rest.strip_prefix('"') {
                    let end = r.find('"').unwrap_or(r.len());
                    (&r[..end], &r[(end + 1).min(r.len())..])
                } else {
                    let end = rest.find(':').unwrap_or(rest.len());
                    (&rest[..end], &rest[end..])
                };
                let after = after.trim_start();
                let Some(value) = after.strip_prefix(':') else {
                    break;
                };
                assert!(
                    keys.insert(key.trim().to_owned()),
                    "{name}: {key} is given twice"
                );
                // Skip the string value (no table value holds an escaped quote).
                let value = value.trim_start();
                let Some(v) = value.strip_prefix('"') else {
                    break;
                };
                rest = &v[v.find('"').map_or(v.len(), |e| e + 1)..];
            }
        }
        keys
    }

    #[test]
    fn both_languages_have_the_same_words() {
        let (zh, en) = (i18n_keys("zh"), i18n_keys("en"));
        assert!(zh.len() > 300, "{} keys read", zh.len());
        assert!(zh.contains("home.title") && zh.contains("skip"));
        let only_zh: Vec<_> = zh.difference(&en).collect();
        let only_en: Vec<_> = en.difference(&zh).collect();
        assert!(
            only_zh.is_empty() && only_en.is_empty(),
            "only in Chinese: {only_zh:?}; only in English: {only_en:?}"
        );
    }
}
