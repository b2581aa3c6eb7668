//! `/api/v1/accounts` and `/api/v1/tokens`: administrators manage the accounts people sign in
//! with and the bearer tokens integrations and scripts use.
//!
//! Every account change is a command on the account's stream ([`caretrail_domain`]'s
//! `CreateAccount`, `ChangeAccountRole`, `DisableAccount`, `EnableAccount`,
//! `SetAccountPassword`); the user name and the password hash go to `account_credentials`
//! only. The order of the two writes is chosen so that a crash between them never leaves a
//! way in that the log does not show: a new account's credentials are written first (a row
//! without `AccountCreated` cannot sign in) and removed again if the command is refused; a
//! change of role, state or password ends the account's sessions first, then records the
//! command, then (for a password) stores the new hash.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use caretrail_app::CommandMeta;
use caretrail_domain::command::{
    ChangeAccountRole, CreateAccount, DisableAccount, EnableAccount, SetAccountPassword,
};
use caretrail_domain::vocab::PasswordSetReason;
use caretrail_domain::{
    AccountId, Category, Command, DirectorId, State as DomainState, StreamName,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::AppState;
use crate::auth::{Principal, Role, TokenInfo};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::Path;
use crate::openapi::Json;
use crate::session::{normalise_username, valid_username};

/// An account as administrators see it (never a password or its hash).
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct AccountOut {
    /// The account's id.
    pub account_id: Uuid,
    /// The user name it signs in with.
    pub username: String,
    /// Its role, from the log (`None` while its creation is not recorded).
    pub role: Option<Role>,
    /// For a director account: the director.
    pub director_id: Option<Uuid>,
    /// Whether disabled.
    pub disabled: bool,
    /// Failed sign-ins since the last success or lockout.
    pub failed_sign_ins: i32,
    /// Locked by failed sign-ins until then, if locked now.
    pub locked_until: Option<DateTime<Utc>>,
    /// When the account was made.
    pub created_at: DateTime<Utc>,
}

/// `POST /api/v1/accounts`'s body.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// 3 to 64 of `a-z 0-9 . _ -` (upper case is folded), starting with a letter or digit.
    #[schemars(length(min = 3, max = 64))]
    pub username: String,
    /// The first password: at least 10 characters, at most 256 bytes, no control characters.
    #[schemars(length(min = 10, max = 256))]
    pub password: String,
    /// `admin`, `director` or `auditor`.
    pub role: Role,
    /// For a director account: the director it speaks for.
    #[serde(default)]
    pub director_id: Option<Uuid>,
}

/// `POST /api/v1/accounts/{id}/role`'s body.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    /// `admin`, `director` or `auditor`.
    pub role: Role,
    /// For the director role: the director.
    #[serde(default)]
    pub director_id: Option<Uuid>,
}

/// `POST /api/v1/accounts/{id}/password`'s body.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    /// The new password: at least 10 characters, at most 256 bytes, no control characters.
    #[schemars(length(min = 10, max = 256))]
    pub password: String,
}

/// The account a path names.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct AccountPath {
    /// The account's id.
    pub id: Uuid,
}

/// `POST /api/v1/tokens`'s body.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// A label people recognise it by (1 to 100 characters).
    #[schemars(length(min = 1, max = 100))]
    pub name: String,
    /// `admin`, `director`, `auditor` or `integration`.
    pub role: Role,
    /// For a director token: the director it speaks for.
    #[serde(default)]
    pub director_id: Option<Uuid>,
    /// Days until it expires (1 to 3650); none: valid until revoked.
    #[serde(default)]
    #[schemars(range(min = 1, max = 3650))]
    pub expires_in_days: Option<u32>,
}

/// A token just made: its secret, shown this once.
#[derive(Serialize, schemars::JsonSchema)]
pub struct CreatedToken {
    /// The token's id (for listing and revoking).
    pub token_id: Uuid,
    /// The bearer token: `ctk_...`. It is not stored and cannot be shown again.
    pub token: String,
    /// Its role.
    pub role: Role,
    /// When it expires, if ever.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A token as listed: never its secret or hash.
#[derive(Serialize, schemars::JsonSchema)]
pub struct TokenOut {
    /// The token's id.
    pub token_id: Uuid,
    /// Its label.
    pub name: String,
    /// Its role.
    pub role: String,
    /// For a director token: the director.
    pub director_id: Option<Uuid>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it expires, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<TokenInfo> for TokenOut {
    fn from(t: TokenInfo) -> Self {
        Self {
            token_id: t.token_id,
            name: t.name,
            role: t.role,
            director_id: t.director_id,
            created_at: t.created_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
        }
    }
}

fn unavailable(e: sqlx::Error) -> ApiError {
    ApiError::unavailable(&e)
}

fn meta(principal: &Principal) -> CommandMeta {
    let mut meta = CommandMeta::new(principal.actor_id(), principal.role.as_str());
    meta.may_be_retry = false;
    meta
}

fn no_store() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h
}

/// Refuses a new password that is too short, too long or holds control characters (422
/// `weak_password` naming `field`).
pub fn check_new_password(password: &str, field: &str) -> ApiResult<()> {
    crate::password::check_new(password).map_err(|weak| {
        let mut e = ApiError::validation(
            "the new password is not acceptable",
            vec![FieldError {
                field: field.to_owned(),
                message: weak.to_string(),
            }],
        );
        e.code = "weak_password";
        e
    })
}

async fn run(state: &AppState, principal: &Principal, command: Command) -> ApiResult<()> {
    state.app.execute(&command, &meta(principal)).await?;
    Ok(())
}

/// Records a password set and stores its hash, after ending the account's sessions.
pub(crate) async fn set_password(
    state: &AppState,
    principal: &Principal,
    account_id: Uuid,
    reason: PasswordSetReason,
    new_hash: &str,
) -> ApiResult<()> {
    let sessions = &state.tokens.sessions;
    sessions.end_all(account_id).await.map_err(unavailable)?;
    run(
        state,
        principal,
        SetAccountPassword {
            account_id: AccountId(account_id),
            reason,
        }
        .into(),
    )
    .await?;
    sessions
        .db()
        .set_password(account_id, new_hash, reason == PasswordSetReason::Reset)
        .await
        .map_err(unavailable)?;
    tracing::info!(%account_id, reason = reason.as_str(), "password set");
    Ok(())
}

async fn account_out(state: &AppState, row: crate::tables::CredentialRow) -> ApiResult<AccountOut> {
    let (_, st) = state
        .app
        .state(&StreamName::new(Category::Account, row.account_id))
        .await?;
    let (role, director_id, disabled) = match st {
        DomainState::Account(a) if a.exists => {
            (a.role, a.director_id.map(|d| d.uuid()), a.disabled)
        }
        _ => (None, None, false),
    };
    let now = Utc::now();
    Ok(AccountOut {
        account_id: row.account_id,
        username: row.username,
        role,
        director_id,
        disabled,
        failed_sign_ins: row.failed_count,
        locked_until: row
            .locked_until
            .and_then(DateTime::from_timestamp_micros)
            .filter(|t| *t > now),
        created_at: DateTime::from_timestamp_micros(row.created_at).unwrap_or(DateTime::UNIX_EPOCH),
    })
}

/// `GET /api/v1/accounts`: every account (administrators).
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<Vec<AccountOut>>> {
    principal.require(&[Role::Admin], "list accounts")?;
    let rows = state
        .tokens
        .sessions
        .db()
        .all_credentials()
        .await
        .map_err(unavailable)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(account_out(&state, row).await?);
    }
    Ok(Json(out))
}

/// `POST /api/v1/accounts`: creates an account (administrators).
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    bytes: axum::body::Bytes,
) -> ApiResult<(StatusCode, HeaderMap, Json<AccountOut>)> {
    principal.require(&[Role::Admin], "create accounts")?;
    let req: NewAccount = crate::json::parse_body(&bytes)?;
    let username = normalise_username(&req.username);
    if !valid_username(&username) {
        let mut e = ApiError::validation(
            "the user name is not acceptable",
            vec![FieldError {
                field: "username".to_owned(),
                message: "3 to 64 of a-z 0-9 . _ -, starting with a letter or digit".to_owned(),
            }],
        );
        e.code = "invalid_username";
        return Err(e);
    }
    check_new_password(&req.password, "password")?;
    let sessions = &state.tokens.sessions;
    let hash = sessions
        .passwords
        .hash(Zeroizing::new(req.password))
        .await
        .map_err(crate::session::SignInError::from)?;
    let account_id = Uuid::now_v7();
    let now = Utc::now().timestamp_micros();
    if !sessions
        .db()
        .insert_credentials(account_id, &username, &hash, now)
        .await
        .map_err(unavailable)?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "username_taken",
            "another account has this user name",
        ));
    }
    let command = CreateAccount {
        account_id: AccountId(account_id),
        role: req.role,
        director_id: req.director_id.map(DirectorId),
    };
    if let Err(e) = run(&state, &principal, command.into()).await {
        // The account does not exist in the log: its credentials go too, so the name is free.
        if let Err(cleanup) = sessions.db().delete_credentials(account_id).await {
            tracing::warn!(%account_id, error = %cleanup, "credentials of a refused account left behind (they cannot sign in)");
        }
        return Err(e);
    }
    tracing::info!(%account_id, role = req.role.as_str(), "account created");
    let row = sessions
        .db()
        .credentials(account_id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::internal(&"a created account's credentials vanished"))?;
    let out = account_out(&state, row).await?;
    let mut headers = no_store();
    if let Ok(v) = format!("/api/v1/accounts/{account_id}").parse() {
        headers.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, headers, Json(out)))
}

async fn existing(state: &AppState, id: Uuid) -> ApiResult<crate::tables::CredentialRow> {
    state
        .tokens
        .sessions
        .db()
        .credentials(id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::not_found("no such account"))
}

/// `GET /api/v1/accounts/{id}`: one account (administrators).
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(AccountPath { id }): Path<AccountPath>,
) -> ApiResult<Json<AccountOut>> {
    principal.require(&[Role::Admin], "read accounts")?;
    let row = existing(&state, id).await?;
    Ok(Json(account_out(&state, row).await?))
}

/// `POST /api/v1/accounts/{id}/role`: changes an account's role (administrators); its
/// sessions end.
pub async fn change_role(
    State(state): State<AppState>,
    principal: Principal,
    Path(AccountPath { id }): Path<AccountPath>,
    bytes: axum::body::Bytes,
) -> ApiResult<Json<AccountOut>> {
    principal.require(&[Role::Admin], "change accounts")?;
    let req: RoleChange = crate::json::parse_body(&bytes)?;
    let row = existing(&state, id).await?;
    state
        .tokens
        .sessions
        .end_all(id)
        .await
        .map_err(unavailable)?;
    run(
        &state,
        &principal,
        ChangeAccountRole {
            account_id: AccountId(id),
            role: req.role,
            director_id: req.director_id.map(DirectorId),
        }
        .into(),
    )
    .await?;
    Ok(Json(account_out(&state, row).await?))
}

/// `POST /api/v1/accounts/{id}/disable`: disables an account (administrators); its sessions
/// end.
pub async fn disable(
    State(state): State<AppState>,
    principal: Principal,
    Path(AccountPath { id }): Path<AccountPath>,
) -> ApiResult<Json<AccountOut>> {
    principal.require(&[Role::Admin], "change accounts")?;
    let row = existing(&state, id).await?;
    state
        .tokens
        .sessions
        .end_all(id)
        .await
        .map_err(unavailable)?;
    run(
        &state,
        &principal,
        DisableAccount {
            account_id: AccountId(id),
        }
        .into(),
    )
    .await?;
    Ok(Json(account_out(&state, row).await?))
}

/// `POST /api/v1/accounts/{id}/enable`: enables a disabled account (administrators).
pub async fn enable(
    State(state): State<AppState>,
    principal: Principal,
    Path(AccountPath { id }): Path<AccountPath>,
) -> ApiResult<Json<AccountOut>> {
    principal.require(&[Role::Admin], "change accounts")?;
    let row = existing(&state, id).await?;
    run(
        &state,
        &principal,
        EnableAccount {
            account_id: AccountId(id),
        }
        .into(),
    )
    .await?;
    Ok(Json(account_out(&state, row).await?))
}

/// `POST /api/v1/accounts/{id}/password`: an administrator's reset; lifts a lockout and ends
/// the account's sessions.
pub async fn reset_password(
    State(state): State<AppState>,
    principal: Principal,
    Path(AccountPath { id }): Path<AccountPath>,
    bytes: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    principal.require(&[Role::Admin], "reset passwords")?;
    let req: PasswordReset = crate::json::parse_body(&bytes)?;
    check_new_password(&req.password, "password")?;
    existing(&state, id).await?;
    let hash = state
        .tokens
        .sessions
        .passwords
        .hash(Zeroizing::new(req.password))
        .await
        .map_err(crate::session::SignInError::from)?;
    set_password(&state, &principal, id, PasswordSetReason::Reset, &hash).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/tokens`: every bearer token (administrators); never a secret.
pub async fn list_tokens(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<Vec<TokenOut>>> {
    principal.require(&[Role::Admin], "list tokens")?;
    let tokens = state
        .tokens
        .list()
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    Ok(Json(tokens.into_iter().map(TokenOut::from).collect()))
}

/// `POST /api/v1/tokens`: makes a bearer token (administrators); the answer holds it, this
/// once.
pub async fn create_token(
    State(state): State<AppState>,
    principal: Principal,
    bytes: axum::body::Bytes,
) -> ApiResult<(StatusCode, HeaderMap, Json<CreatedToken>)> {
    principal.require(&[Role::Admin], "create tokens")?;
    let req: NewToken = crate::json::parse_body(&bytes)?;
    let name = req.name.trim();
    if name.is_empty()
        || name.chars().count() > 100
        || caretrail_domain::text::check(name, caretrail_domain::text::TextKind::Line).is_err()
    {
        return Err(ApiError::validation(
            "the token's name is not acceptable",
            vec![FieldError {
                field: "name".to_owned(),
                message: "1 to 100 characters of plain text on one line".to_owned(),
            }],
        ));
    }
    if (req.role == Role::Director) != req.director_id.is_some() {
        return Err(ApiError::validation(
            "a director token needs director_id, and only a director token may have one",
            vec![FieldError {
                field: "director_id".to_owned(),
                message: "required for the director role only".to_owned(),
            }],
        ));
    }
    let expires_at = match req.expires_in_days {
        Some(days @ 1..=3650) => Some(Utc::now() + chrono::Duration::days(i64::from(days))),
        Some(_) => {
            return Err(ApiError::validation(
                "expires_in_days is out of range",
                vec![FieldError {
                    field: "expires_in_days".to_owned(),
                    message: "1 to 3650".to_owned(),
                }],
            ));
        }
        None => None,
    };
    let (p, token) = state
        .tokens
        .create_expiring(req.role, req.director_id, name, expires_at)
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    tracing::info!(token_id = %p.token_id, role = p.role.as_str(), "token created over HTTP");
    Ok((
        StatusCode::CREATED,
        no_store(),
        Json(CreatedToken {
            token_id: p.token_id,
            token,
            role: p.role,
            expires_at: p.expires_at,
        }),
    ))
}

/// The token a path names.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct TokenPath {
    /// The token's id.
    pub id: Uuid,
}

/// `DELETE /api/v1/tokens/{id}`: revokes a token (administrators).
pub async fn revoke_token(
    State(state): State<AppState>,
    principal: Principal,
    Path(TokenPath { id }): Path<TokenPath>,
) -> ApiResult<StatusCode> {
    principal.require(&[Role::Admin], "revoke tokens")?;
    // Revoking the token this very request came with would lock its holder out of the page
    // and the API at once; the command line (`caretrail token revoke`) still can.
    if !principal.session && principal.token_id == id {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "token_in_use",
            "this request is made with that token; revoke it with another token or `caretrail token revoke`",
        ));
    }
    match state
        .tokens
        .revoke(id)
        .await
        .map_err(|e| ApiError::unavailable(&e))?
    {
        crate::auth::Revocation::Revoked | crate::auth::Revocation::AlreadyRevoked(_) => {
            Ok(StatusCode::NO_CONTENT)
        }
        crate::auth::Revocation::Unknown => Err(ApiError::not_found("no such token")),
    }
}

/// The demo's accounts: `demo-admin`, `demo-director` (冯亚丽, paired in the demo) and
/// `demo-auditor`, all with one freshly generated password, answered once and never logged.
/// Accounts that exist from an earlier run get the new password by a reset (so the printed
/// password always works, and the log says it was reset by the system).
pub async fn seed_demo(state: &AppState) -> ApiResult<(Vec<&'static str>, Zeroizing<String>)> {
    use base64::Engine;
    let mut raw = Zeroizing::new([0u8; 15]);
    getrandom::fill(raw.as_mut()).map_err(|e| ApiError::internal(&e))?;
    let password =
        Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_ref()));
    let system = Principal {
        token_id: Uuid::nil(),
        name: "system".to_owned(),
        role: Role::Admin,
        director_id: None,
        expires_at: None,
        account_id: None,
        session: false,
    };
    let sessions = &state.tokens.sessions;
    let hash = sessions
        .passwords
        .hash(password.clone())
        .await
        .map_err(crate::session::SignInError::from)?;
    let demo = [
        ("demo-admin", Role::Admin, None),
        (
            "demo-director",
            Role::Director,
            Some(caretrail_domain::demo::directors::FENG_YALI),
        ),
        ("demo-auditor", Role::Auditor, None),
    ];
    let mut names = Vec::new();
    for (username, role, director_id) in demo {
        let existing = sessions
            .db()
            .credentials_by_username(username)
            .await
            .map_err(unavailable)?;
        let account_id = Uuid::now_v7();
        let now = Utc::now().timestamp_micros();
        // Two demo servers starting on one database at once: the one whose insert loses finds
        // the other's row and resets it, so the password each prints works until the next.
        let inserted = existing.is_none()
            && sessions
                .db()
                .insert_credentials(account_id, username, &hash, now)
                .await
                .map_err(unavailable)?;
        if inserted {
            let command = CreateAccount {
                account_id: AccountId(account_id),
                role,
                director_id,
            };
            run(state, &system, command.into()).await?;
        } else {
            let row = match existing {
                Some(row) => row,
                None => sessions
                    .db()
                    .credentials_by_username(username)
                    .await
                    .map_err(unavailable)?
                    .ok_or_else(|| ApiError::internal(&"a demo account's credentials vanished"))?,
            };
            // The other server may not have recorded the account's creation yet.
            let mut tries = 0;
            while let Err(e) = set_password(
                state,
                &system,
                row.account_id,
                PasswordSetReason::Reset,
                &hash,
            )
            .await
            {
                tries += 1;
                if tries >= 50 {
                    return Err(e);
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        names.push(username);
    }
    Ok((names, password))
}
