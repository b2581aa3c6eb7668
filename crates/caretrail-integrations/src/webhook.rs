//! Standard Webhooks 1.0 over HTTPS.
//!
//! A webhook subscription sends each event as one signed POST to a URL an administrator gave.
//! Receivers verify deliveries with any Standard Webhooks library: the signature is an
//! HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}` under a secret shared once, as
//! `whsec_` and base64. While a secret is being rotated, the old and the new secret both sign,
//! so the receiver can switch at its own pace.
//!
//! The URL is the dangerous part. It is typed by a person, and the server that follows it sits
//! inside the operator's network, so a URL naming a loopback, private or link-local address
//! (the cloud metadata service at 169.254.169.254 above all) would let an administrator make
//! the server POST to its neighbours: server-side request forgery. [`WebhookClient`] therefore
//! refuses such URLs when a subscription is created ([`WebhookClient::check_url`]), and again
//! on every attempt after the name is resolved: its DNS resolver drops every non-public address,
//! so the connection can only be made to an address that passed the check. Checking the name
//! once and connecting later would leave a gap a DNS record changed in between could use.
//! Redirects are not followed and no proxy is used, since either would lead past the check.
//!
//! An attempt's result is an [`Attempt`]: the status, the latency, whether to retry, and a short
//! English error that never carries the secret, the body or the URL's query string (they are
//! written to the subscription's attempt history).

use std::error::Error as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use sha2::Sha256;
use url::{Host, Url};

use crate::cloudevent::Outgoing;

/// The longest URL accepted for a subscription.
const MAX_URL_LEN: usize = 2048;
/// The most of a response body kept in an attempt's record.
const EXCERPT_BYTES: usize = 1024;
/// The longest error description kept in an attempt's record.
const MAX_ERROR_LEN: usize = 200;
/// The bytes drawn for a new secret.
const SECRET_BYTES: usize = 32;
/// The key lengths a Standard Webhooks symmetric secret may have (24 to 64 bytes).
const SECRET_LEN: std::ops::RangeInclusive<usize> = 24..=64;

/// A webhook signing secret: the key of the HMAC-SHA256 signatures a subscription's receiver
/// verifies. Its `Debug` output is `Secret(..)`, so it cannot end up in a log by accident; it
/// has no `Display` and no `Serialize`. [`Secret::to_whsec`] is the one way to show it.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Why a text is not a webhook secret. The messages never repeat the text.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The text does not start with `whsec_`.
    #[error("a webhook secret starts with whsec_")]
    Prefix,
    /// The text after `whsec_` is not standard base64.
    #[error("a webhook secret is whsec_ followed by standard base64")]
    Base64,
    /// The key is shorter than 24 or longer than 64 bytes.
    #[error("a webhook secret's key is 24 to 64 bytes long")]
    Length,
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed: {0}")]
    Random(getrandom::Error),
}

impl Secret {
    /// A new secret of 32 bytes from the operating system's random number generator.
    pub fn generate() -> Result<Secret, SecretError> {
        let mut key = vec![0; SECRET_BYTES];
        getrandom::fill(&mut key).map_err(SecretError::Random)?;
        Ok(Secret(key))
    }

    /// The secret as the Standard Webhooks libraries take it: `whsec_` and standard base64.
    pub fn to_whsec(&self) -> String {
        format!("whsec_{}", STANDARD.encode(&self.0))
    }

    /// Reads a secret written by [`Secret::to_whsec`] (or by another Standard Webhooks sender:
    /// any key of 24 to 64 bytes).
    pub fn from_whsec(text: &str) -> Result<Secret, SecretError> {
        let encoded = text.strip_prefix("whsec_").ok_or(SecretError::Prefix)?;
        let key = STANDARD.decode(encoded).map_err(|_| SecretError::Base64)?;
        if !SECRET_LEN.contains(&key.len()) {
            return Err(SecretError::Length);
        }
        Ok(Secret(key))
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// One Standard Webhooks signature: `v1,` and the base64 HMAC-SHA256 of
/// `{msg_id}.{timestamp}.{body}` under `secret`.
pub fn sign(secret: &Secret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256>>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header: one signature per secret, separated by a space (during a
/// rotation's grace period the old and the new secret both sign, and a receiver accepts the
/// delivery when any of them verifies).
pub fn signature_header(secrets: &[&Secret], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| sign(secret, msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `ip` is an address on the public internet, the only kind a webhook may reach.
///
/// Refused: IPv4 `0/8`, `10/8`, `100.64/10` (shared address space), `127/8`, `169.254/16`
/// (link-local, with the cloud metadata service), `172.16/12`, `192.0.0/24`, the three
/// TEST-NETs, `192.88.99/24`, `192.168/16`, `198.18/15`, multicast `224/4` and `240/4`
/// (reserved, with the broadcast address). For IPv6 only the global unicast block `2000::/3`
/// is public, less `2001::/23` (protocol assignments, Teredo among them), the documentation
/// blocks `2001:db8::/32` and `3fff::/20`; this leaves out `::`, `::1`, unique-local
/// `fc00::/7`, link-local `fe80::/10`, multicast and every other special block. An IPv6
/// address that carries an IPv4 address (IPv4-mapped `::ffff:0:0/96`, IPv4-compatible `::/96`,
/// NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) is judged by the IPv4 address it carries, since that
/// is where the packets end up.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// The non-public IPv4 blocks, as (network, prefix length).
const NON_PUBLIC_V4: &[([u8; 4], u32)] = &[
    ([0, 0, 0, 0], 8),
    ([10, 0, 0, 0], 8),
    ([100, 64, 0, 0], 10),
    ([127, 0, 0, 0], 8),
    ([169, 254, 0, 0], 16),
    ([172, 16, 0, 0], 12),
    ([192, 0, 0, 0], 24),
    ([192, 0, 2, 0], 24),
    ([192, 88, 99, 0], 24),
    ([192, 168, 0, 0], 16),
    ([198, 18, 0, 0], 15),
    ([198, 51, 100, 0], 24),
    ([203, 0, 113, 0], 24),
    ([224, 0, 0, 0], 4),
    ([240, 0, 0, 0], 4),
];

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let ip = u32::from(ip);
    !NON_PUBLIC_V4.iter().any(|&(net, len)| {
        let mask = u32::MAX << (32 - len);
        ip & mask == u32::from_be_bytes(net)
    })
}

/// The blocks inside `2000::/3` that are not public, as (network, prefix length).
const NON_PUBLIC_V6: &[(u128, u32)] = &[
    (0x2001_0000 << 96, 23),
    (0x2001_0db8 << 96, 32),
    (0x3fff_0000 << 96, 20),
];

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    let bits = u128::from(ip);
    let in_block = |net: u128, len: u32| bits & (u128::MAX << (128 - len)) == net;
    in_block(0x2000 << 112, 3) && !NON_PUBLIC_V6.iter().any(|&(net, len)| in_block(net, len))
}

/// The IPv4 address an IPv6 address carries, for the forms that deliver to it: IPv4-mapped,
/// IPv4-compatible (`::` and `::1` included: they carry `0.0.0.0` and `0.0.0.1`), NAT64's
/// well-known prefix and 6to4.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if bits >> 32 == 0xffff || bits >> 32 == 0 || bits >> 32 == 0x0064_ff9b << 64 {
        Some(low32)
    } else if bits >> 112 == 0x2002 {
        Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32))
    } else {
        None
    }
}

/// Why a webhook URL is refused. Each variant has a stable [`code`](UrlRefused::code); the
/// messages never repeat the URL (it may carry a token in its query string).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    /// The text is not an absolute URL.
    #[error("the webhook URL is not a valid absolute URL")]
    Invalid,
    /// The URL is longer than 2,048 characters.
    #[error("the webhook URL is longer than 2048 characters")]
    TooLong,
    /// The scheme is not `https` (`http` is allowed only where private addresses are).
    #[error("the webhook URL must use https")]
    Scheme,
    /// The URL names no host.
    #[error("the webhook URL has no host")]
    Host,
    /// The URL carries a user name or password, which would be written to the audit log.
    #[error("the webhook URL must not contain a user name or password")]
    Credentials,
    /// The URL has a fragment, which is never sent and so is a mistake.
    #[error("the webhook URL must not contain a fragment")]
    Fragment,
    /// The host is, or resolves only to, a loopback, private, link-local or otherwise
    /// non-public address.
    #[error("the webhook URL's host is not a public internet address")]
    PrivateAddress,
}

impl UrlRefused {
    /// The stable, machine-readable code of this refusal.
    pub fn code(&self) -> &'static str {
        match self {
            UrlRefused::Invalid => "webhook_url_invalid",
            UrlRefused::TooLong => "webhook_url_too_long",
            UrlRefused::Scheme => "webhook_url_scheme",
            UrlRefused::Host => "webhook_url_host",
            UrlRefused::Credentials => "webhook_url_credentials",
            UrlRefused::Fragment => "webhook_url_fragment",
            UrlRefused::PrivateAddress => "webhook_url_private_address",
        }
    }
}

/// How the webhook client behaves. The defaults suit production.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Whether `http` URLs and non-public addresses may be reached: only for tests and for
    /// receivers on the operator's own network, never by default.
    pub allow_private: bool,
    /// How long one attempt may take, connecting included.
    pub timeout: Duration,
    /// The `user-agent` header.
    pub user_agent: String,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            allow_private: false,
            timeout: Duration::from_secs(10),
            user_agent: format!("caretrail-webhooks/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// Why the webhook client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The HTTP client could not be built (its TLS configuration above all).
    #[error("the webhook HTTP client could not be built: {0}")]
    Client(#[source] reqwest::Error),
}

/// Sends webhooks: one HTTP client, built once and shared by every subscription, so its pool of
/// keep-alive connections is reused across deliveries.
#[derive(Clone, Debug)]
pub struct WebhookClient {
    http: reqwest::Client,
    config: WebhookConfig,
}

/// Whether a delivery attempt succeeded and what the subscription does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver answered 2xx: the subscription's cursor moves past the event.
    Delivered,
    /// Any other answer, a timeout, a refused connection, a failed name resolution or a
    /// refused address: the event is tried again later.
    Retry,
    /// The receiver answered 410 Gone: it wants no more deliveries, and the subscription must
    /// be disabled at once.
    Gone,
}

/// The record of one delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The response's status, if one came.
    pub status: Option<u16>,
    /// How long the attempt took, reading the response excerpt included.
    pub latency: Duration,
    /// What the subscription does next.
    pub outcome: Outcome,
    /// Why the attempt did not deliver (or what went wrong after a 2xx), in English, starting
    /// with a stable word: `timeout`, `connect`, `dns`, `address_refused`, `url_refused`,
    /// `unsigned`, `status <code>`, `redirect <code>`, `request` or `body`. It never contains
    /// the secret, the body or the URL.
    pub error: Option<String>,
    /// The start of the response's body (at most 1,024 bytes, read as lossy UTF-8, control
    /// characters replaced), if it had one.
    pub response_excerpt: Option<String>,
}

impl WebhookClient {
    /// Builds the client: no redirects followed (a 3xx is a failed attempt), no proxy (it would
    /// connect on our behalf, past the address check), the configured timeout for connecting
    /// and for the whole attempt, and the resolver that drops non-public addresses.
    pub fn new(config: WebhookConfig) -> Result<Self, WebhookError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(8)
            .https_only(!config.allow_private)
            .user_agent(config.user_agent.clone())
            .dns_resolver(Arc::new(PublicOnlyResolver {
                allow_private: config.allow_private,
            }))
            .build()
            .map_err(WebhookError::Client)?;
        Ok(WebhookClient { http, config })
    }

    /// The configuration the client was built with.
    pub fn config(&self) -> &WebhookConfig {
        &self.config
    }

    /// Checks a URL when a subscription is created (and again before every attempt): an
    /// absolute `https` URL (`http` too when private addresses are allowed) of at most 2,048
    /// characters, with a host, without user name, password or fragment, and, when the host is
    /// an IP address, a public one. A host name is checked after resolution, on every attempt.
    pub fn check_url(&self, url: &str) -> Result<Url, UrlRefused> {
        if url.len() > MAX_URL_LEN {
            return Err(UrlRefused::TooLong);
        }
        let parsed = Url::parse(url).map_err(|_| UrlRefused::Invalid)?;
        // What is sent is the parsed URL, percent-encoded and with its host in punycode, which
        // can be three times as long as the text typed: a URL accepted here must pass this check
        // again on every attempt (`deliver` checks the parsed form), so both forms are bounded.
        if parsed.as_str().len() > MAX_URL_LEN {
            return Err(UrlRefused::TooLong);
        }
        match parsed.scheme() {
            "https" => {}
            "http" if self.config.allow_private => {}
            _ => return Err(UrlRefused::Scheme),
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(UrlRefused::Credentials);
        }
        if parsed.fragment().is_some() {
            return Err(UrlRefused::Fragment);
        }
        let ip = match parsed.host() {
            None => return Err(UrlRefused::Host),
            Some(Host::Domain("")) => return Err(UrlRefused::Host),
            Some(Host::Domain(_)) => None,
            Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        };
        if let Some(ip) = ip
            && !self.config.allow_private
            && !is_public(ip)
        {
            return Err(UrlRefused::PrivateAddress);
        }
        Ok(parsed)
    }

    /// Makes one delivery attempt: a POST of `msg.body` with the Standard Webhooks headers
    /// (`webhook-id` is the event id, `webhook-timestamp` the current time, and one signature
    /// per secret in `webhook-signature`).
    ///
    /// The URL is checked again first (an IP-literal host is not resolved, so the resolver's
    /// check would not see it); a host name is checked by the resolver on every connection.
    #[tracing::instrument(skip_all, fields(position = msg.position, event_id = %msg.event_id))]
    pub async fn deliver(&self, url: &Url, secrets: &[&Secret], msg: &Outgoing) -> Attempt {
        let started = Instant::now();
        let failed = |error: String| Attempt {
            status: None,
            latency: started.elapsed(),
            outcome: Outcome::Retry,
            error: Some(error),
            response_excerpt: None,
        };
        match self.check_url(url.as_str()) {
            Ok(_) => {}
            Err(UrlRefused::PrivateAddress) => {
                return failed(
                    "address_refused: the host is not a public internet address".to_owned(),
                );
            }
            Err(refused) => return failed(format!("url_refused: {}", refused.code())),
        }
        if secrets.is_empty() {
            return failed("unsigned: the subscription has no signing secret".to_owned());
        }

        let msg_id = msg.event_id.to_string();
        let timestamp = chrono::Utc::now().timestamp();
        let signature = signature_header(secrets, &msg_id, timestamp, &msg.body);
        let request = self
            .http
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(msg.body.clone());

        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                let attempt = failed(self.describe(&err));
                tracing::debug!(error = attempt.error, "webhook attempt failed");
                return attempt;
            }
        };
        let status = response.status().as_u16();
        let (excerpt, body_error) = read_excerpt(response, |err| self.describe(err)).await;
        let (outcome, error) = match status {
            200..=299 => (Outcome::Delivered, body_error.map(|e| format!("body: {e}"))),
            410 => (Outcome::Gone, Some("status 410".to_owned())),
            300..=399 => (Outcome::Retry, Some(format!("redirect {status}"))),
            _ => (Outcome::Retry, Some(format!("status {status}"))),
        };
        tracing::debug!(status, ?outcome, "webhook attempt answered");
        Attempt {
            status: Some(status),
            latency: started.elapsed(),
            outcome,
            error,
            response_excerpt: excerpt,
        }
    }

    /// A short description of a failed request, from our resolver's verdict or the innermost
    /// cause. reqwest's own message is not used: it contains the whole URL.
    fn describe(&self, err: &reqwest::Error) -> String {
        let mut source = err.source();
        let mut root: Option<&(dyn std::error::Error + 'static)> = None;
        while let Some(cause) = source {
            if let Some(failure) = cause.downcast_ref::<ResolveFailure>() {
                return match failure {
                    ResolveFailure::NoPublicAddress => {
                        "address_refused: the name resolves only to non-public addresses".to_owned()
                    }
                    ResolveFailure::Lookup(io) => clean(&format!("dns: {io}")),
                    ResolveFailure::NoAddress => "dns: the name has no address".to_owned(),
                };
            }
            root = Some(cause);
            source = cause.source();
        }
        let cause = root.map(|cause| cause.to_string()).unwrap_or_default();
        let text = if err.is_timeout() {
            format!(
                "timeout: no answer within {} ms",
                self.config.timeout.as_millis()
            )
        } else if err.is_connect() {
            format!("connect: {cause}")
        } else if err.is_body() || err.is_decode() {
            format!("body: {cause}")
        } else {
            format!("request: {cause}")
        };
        clean(&text)
    }
}

/// Reads at most [`EXCERPT_BYTES`] of a response body, chunk by chunk, and stops there: the rest
/// of the body is never read (dropping the response closes its connection).
async fn read_excerpt(
    mut response: reqwest::Response,
    describe: impl Fn(&reqwest::Error) -> String,
) -> (Option<String>, Option<String>) {
    let mut bytes = Vec::with_capacity(EXCERPT_BYTES);
    let mut error = None;
    while bytes.len() < EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = EXCERPT_BYTES - bytes.len();
                bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) => break,
            Err(err) => {
                error = Some(describe(&err));
                break;
            }
        }
    }
    let excerpt = (!bytes.is_empty()).then(|| replace_controls(&String::from_utf8_lossy(&bytes)));
    (excerpt, error)
}

/// Replaces every character a single-line text field refuses (`caretrail_domain::text`): C0
/// and C1 controls, bidirectional overrides and isolates, line and paragraph separators,
/// byte-order marks and noncharacters. A receiver's text goes into an admin page, where an
/// override could make it read as something else.
fn replace_controls(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control()
                || caretrail_domain::text::refused(c, caretrail_domain::text::TextKind::Line)
                    .is_some()
            {
                caretrail_domain::text::REPLACEMENT
            } else {
                c
            }
        })
        .collect()
}

/// An error description kept short and on one line.
fn clean(text: &str) -> String {
    replace_controls(text).chars().take(MAX_ERROR_LEN).collect()
}

/// Why the resolver gave no address.
#[derive(Debug, thiserror::Error)]
enum ResolveFailure {
    /// The name did not resolve.
    #[error("the name could not be resolved: {0}")]
    Lookup(std::io::Error),
    /// The name resolved to no address at all.
    #[error("the name has no address")]
    NoAddress,
    /// Every address the name resolved to is non-public.
    #[error("the name resolves only to non-public addresses")]
    NoPublicAddress,
}

/// The client's resolver: the system's resolver, less every non-public address (unless private
/// addresses are allowed). reqwest connects only to the addresses it returns, so the check and
/// the connection see the same addresses.
struct PublicOnlyResolver {
    allow_private: bool,
}

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(ResolveFailure::Lookup)?
                .collect();
            if found.is_empty() {
                return Err(ResolveFailure::NoAddress.into());
            }
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| allow_private || is_public(addr.ip()))
                .collect();
            if kept.is_empty() {
                tracing::warn!("webhook host resolves only to non-public addresses: refused");
                return Err(ResolveFailure::NoPublicAddress.into());
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_public_judges_every_special_block() {
        let cases: &[(&str, bool)] = &[
            // IPv4 public
            ("8.8.8.8", true),
            ("1.1.1.1", true),
            ("93.184.216.34", true),
            ("100.63.255.255", true),
            ("100.128.0.0", true),
            ("172.15.255.255", true),
            ("172.32.0.0", true),
            ("192.0.1.1", true),
            ("198.17.255.255", true),
            ("198.20.0.0", true),
            ("223.255.255.255", true),
            // IPv4 non-public
            ("0.0.0.0", false),
            ("0.1.2.3", false),
            ("10.0.0.1", false),
            ("10.255.255.255", false),
            ("100.64.0.1", false),
            ("100.127.255.255", false),
            ("127.0.0.1", false),
            ("127.255.255.254", false),
            ("169.254.169.254", false),
            ("169.254.0.1", false),
            ("172.16.0.1", false),
            ("172.31.255.255", false),
            ("192.0.0.8", false),
            ("192.0.2.1", false),
            ("192.88.99.1", false),
            ("192.168.1.1", false),
            ("198.18.0.1", false),
            ("198.19.255.255", false),
            ("198.51.100.7", false),
            ("203.0.113.9", false),
            ("224.0.0.1", false),
            ("239.255.255.250", false),
            ("240.0.0.1", false),
            ("255.255.255.255", false),
            // IPv6 public
            ("2606:4700:4700::1111", true),
            ("2001:4860:4860::8888", true),
            ("2a00:1450:4001::1", true),
            // IPv6 non-public
            ("::", false),
            ("::1", false),
            ("fc00::1", false),
            ("fd12:3456:789a::1", false),
            ("fe80::1", false),
            ("febf::1", false),
            ("fec0::1", false),
            ("ff02::1", false),
            ("ff0e::1", false),
            ("2001:db8::1", false),
            ("2001:0::1", false),
            ("2001:10::1", false),
            ("3fff::1", false),
            ("100::1", false),
            ("64:ff9b:1::1", false),
            // IPv4 carried in IPv6: judged by the IPv4 address
            ("::ffff:127.0.0.1", false),
            ("::ffff:10.1.2.3", false),
            ("::ffff:169.254.169.254", false),
            ("::ffff:8.8.8.8", true),
            ("::127.0.0.1", false),
            ("::8.8.8.8", true),
            ("64:ff9b::7f00:1", false),
            ("64:ff9b::a9fe:a9fe", false),
            ("64:ff9b::808:808", true),
            ("2002:7f00:1::1", false),
            ("2002:a9fe:a9fe::", false),
            ("2002:c0a8:101::1", false),
            ("2002:808:808::1", true),
        ];
        for &(text, public) in cases {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(is_public(ip), public, "{text}");
        }
    }

    fn client(allow_private: bool) -> WebhookClient {
        WebhookClient::new(WebhookConfig {
            allow_private,
            ..WebhookConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn check_url_refusals_have_stable_codes_and_never_echo_the_url() {
        let c = client(false);
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        let cases: &[(&str, &str)] = &[
            ("not a url", "webhook_url_invalid"),
            ("/relative/path", "webhook_url_invalid"),
            (&long, "webhook_url_too_long"),
            ("http://example.com/hook?token=s3cr3t", "webhook_url_scheme"),
            ("ftp://example.com/hook", "webhook_url_scheme"),
            ("https://user:pw@example.com/", "webhook_url_credentials"),
            ("https://user@example.com/", "webhook_url_credentials"),
            ("https://example.com/hook#frag", "webhook_url_fragment"),
            ("https://127.0.0.1/", "webhook_url_private_address"),
            ("https://2130706433/", "webhook_url_private_address"),
            ("https://0x7f.1/", "webhook_url_private_address"),
            ("https://[::ffff:a9fe:a9fe]/", "webhook_url_private_address"),
        ];
        for &(url, code) in cases {
            let refused = c.check_url(url).unwrap_err();
            assert_eq!(refused.code(), code, "{url}");
            let message = refused.to_string();
            assert!(!message.contains("example"), "{message}");
            assert!(!message.contains("s3cr3t"), "{message}");
        }
        assert!(c.check_url("https://example.com/hook?x=1").is_ok());
        assert!(c.check_url("https://8.8.8.8/").is_ok());
    }

    #[test]
    fn allow_private_admits_http_and_private_addresses_but_not_credentials() {
        let c = client(true);
        assert!(c.check_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(c.check_url("https://10.0.0.1/").is_ok());
        assert_eq!(
            c.check_url("http://u:p@127.0.0.1/").unwrap_err().code(),
            "webhook_url_credentials"
        );
        assert_eq!(
            c.check_url("file:///etc/passwd").unwrap_err().code(),
            "webhook_url_scheme"
        );
    }

    #[test]
    fn a_secret_round_trips_through_whsec_and_never_prints() {
        let secret = Secret::generate().unwrap();
        assert_eq!(secret.as_bytes().len(), 32);
        let text = secret.to_whsec();
        assert!(text.starts_with("whsec_"));
        let back = Secret::from_whsec(&text).unwrap();
        assert_eq!(back.as_bytes(), secret.as_bytes());
        assert_eq!(format!("{secret:?}"), "Secret(..)");
        assert_ne!(
            Secret::generate().unwrap().as_bytes(),
            secret.as_bytes(),
            "two secrets drawn alike"
        );
    }

    #[test]
    fn malformed_secrets_are_refused() {
        assert!(matches!(
            Secret::from_whsec("C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
            Err(SecretError::Prefix)
        ));
        assert!(matches!(
            Secret::from_whsec("whsec_not base64!"),
            Err(SecretError::Base64)
        ));
        assert!(matches!(
            Secret::from_whsec("whsec_AAAA"),
            Err(SecretError::Length)
        ));
    }

    #[test]
    fn signatures_match_the_standard_webhooks_library() {
        // The Standard Webhooks libraries' own test secret.
        let whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let secret = Secret::from_whsec(whsec).unwrap();
        let body = br#"{"test": 2432232314}"#;
        let ours = sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        let theirs = standardwebhooks::Webhook::new(whsec)
            .unwrap()
            .sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
            .unwrap();
        assert_eq!(ours, theirs);
        assert_eq!(ours, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn the_signature_header_has_one_signature_per_secret() {
        let a = Secret::generate().unwrap();
        let b = Secret::generate().unwrap();
        let header = signature_header(&[&a, &b], "id", 1, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts, [sign(&a, "id", 1, b"{}"), sign(&b, "id", 1, b"{}")]);
    }

    #[test]
    fn excerpts_replace_control_characters() {
        assert_eq!(
            replace_controls("a\nb\u{1b}[31mc"),
            "a\u{FFFD}b\u{FFFD}[31mc"
        );
        // Bidirectional overrides and isolates, line separators and byte-order marks too.
        assert_eq!(
            replace_controls("\u{202e}x\u{202c}\u{2066}\u{2028}\u{feff}\u{85}"),
            "\u{FFFD}x\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}"
        );
    }

    #[test]
    fn a_url_whose_encoded_form_is_too_long_is_refused_at_creation() {
        // 1,010 'é' are 2,020 bytes as typed but 6,060 once percent-encoded, which is what
        // every attempt checks; it must be refused when created, not on every attempt.
        let url = format!("https://example.com/{}", "é".repeat(1010));
        assert!(url.len() <= MAX_URL_LEN);
        assert_eq!(
            client(false).check_url(&url).unwrap_err().code(),
            "webhook_url_too_long"
        );
    }
}
