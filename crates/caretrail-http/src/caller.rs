//! Who the caller is and what a client needs to offer them: `GET /api/v1/me` (the principal
//! and the commands its role may send, from the domain's issuer table) and `GET
//! /api/v1/divisions` (Zhejiang's region table, so pickers choose regions by name). Neither
//! reads the read models; both are answers about the caller and reference data, not dashboards.

use crate::openapi::Json;
use caretrail_domain::RegionCode;
use schemars::JsonSchema;
use serde::Serialize;

use crate::auth::{Principal, Role};
use crate::dashboard::List;
use crate::error::ApiResult;

/// Who the caller is and which commands they may send, so a client shows what the role may
/// see and offers the forms it may submit.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Me {
    /// The token's principal: id, name, role, director, expiry.
    #[serde(flatten)]
    pub principal: Principal,
    /// The commands this role may send to `POST /api/v1/commands/{name}`, in the domain's
    /// order (`caretrail_domain::authority`): a director's commands reach only their own pairing,
    /// which the server still judges per record. Subscriptions and accounts are changed through
    /// their own resources and are not listed.
    pub commands: Vec<&'static str>,
}

/// The command routes `role` may call: the domain's issuer table, less the subscription and
/// account commands, which have no command route.
pub fn commands_for(role: Role) -> Vec<&'static str> {
    caretrail_domain::CommandKind::ALL
        .iter()
        .filter(|k| !k.is_subscription() && !k.is_account() && role.may_run(**k))
        .map(|k| k.name())
        .collect()
}

/// Who the caller is, so a client can show what the role may see and offer what it may run.
pub async fn me(principal: Principal) -> Json<Me> {
    let commands = commands_for(principal.role);
    Json(Me {
        principal,
        commands,
    })
}

/// One administrative division of Zhejiang (GB/T 2260), for pickers that choose a region by
/// name.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Division {
    /// The six-digit GB/T 2260 code.
    pub code: String,
    /// The official Chinese name, e.g. `龙游县`.
    pub name: &'static str,
    /// `province`, `prefecture` (a city: 地级市) or `county` (a district, county or
    /// county-level city).
    pub level: &'static str,
    /// The enclosing division's code; null for the province.
    pub parent_code: Option<String>,
}

/// `GET /divisions`: Zhejiang's current administrative divisions in code order, the table
/// commands check region codes against (retired codes left out: a new record uses the
/// current one). Public reference data without personal data, so every signed-in role may
/// read it; pickers show the names and send the codes.
pub async fn divisions(principal: Principal) -> ApiResult<Json<List<Division>>> {
    principal.require(
        &[
            Role::Admin,
            Role::Auditor,
            Role::Director,
            Role::Integration,
        ],
        "read the region table",
    )?;
    let items = RegionCode::all()
        .filter(|c| !c.is_retired())
        .map(|c| Division {
            code: c.as_str(),
            name: c.name(),
            level: match c.level() {
                caretrail_domain::region::RegionLevel::Province => "province",
                caretrail_domain::region::RegionLevel::Prefecture => "prefecture",
                caretrail_domain::region::RegionLevel::County => "county",
            },
            parent_code: c.parent().map(|p| p.as_str()),
        })
        .collect();
    Ok(Json(List {
        items,
        next_cursor: None,
    }))
}
