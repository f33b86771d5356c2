//! Entitlement review campaigns under `/v1/admin/tenants/{tenant}/reviews` (issue #24): create,
//! list, show with usage evidence, decide an item (keep or revoke), and reports as JSON or CSV.
//! The domain is `warden_service::reviews`; this module parses and renders.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use warden_service::reviews::{self, NewCampaign, ReviewError, Usage};
use warden_store::{Campaign, CampaignCounts, ItemDecision, ReviewItem, ReviewScope, TenantId};

use crate::admin_auth::TenantAdmin;
use crate::clock::unix_now;
use crate::json::Json;
use crate::problem::ApiError;
use crate::routes::admin::{parse_uid, refresh, store, store_error};
use crate::state::AppState;
use crate::wire::json_response;

/// The most campaigns a list shows (newest first).
const LIST_LIMIT: i64 = 200;

fn review_error(error: ReviewError) -> ApiError {
    match error {
        ReviewError::Invalid(message) => ApiError::BadRequest(message),
        ReviewError::Store(error) => store_error(error),
        error @ ReviewError::NotApplied(_) => ApiError::Unavailable(error.to_string()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    name: String,
    scope: String,
    #[serde(default = "owner")]
    reviewer: String,
    #[serde(default)]
    due_at: Option<i64>,
    #[serde(default)]
    due_in_days: Option<i64>,
    #[serde(default)]
    auto_revoke_overdue: bool,
    #[serde(default = "ninety")]
    unused_days: i64,
}

fn owner() -> String {
    "owner".to_owned()
}

fn ninety() -> i64 {
    90
}

/// A campaign as the API answers it.
#[derive(Debug, Serialize)]
struct CampaignJson<'a> {
    id: &'a str,
    tenant: &'a str,
    name: &'a str,
    scope: &'static str,
    reviewer: &'a str,
    due_at: i64,
    auto_revoke_overdue: bool,
    unused_days: i64,
    created_by: &'a str,
    created_at: i64,
    /// `open`, `overdue` (due with items undecided) or `complete`.
    status: &'static str,
    counts: CountsJson,
}

#[derive(Debug, Serialize)]
struct CountsJson {
    total: i64,
    pending: i64,
    kept: i64,
    revoked: i64,
}

impl<'a> CampaignJson<'a> {
    fn of(campaign: &'a Campaign, counts: CampaignCounts, now: i64) -> Self {
        let status = if counts.pending == 0 {
            "complete"
        } else if now >= campaign.due_at {
            "overdue"
        } else {
            "open"
        };
        CampaignJson {
            id: &campaign.id,
            tenant: &campaign.tenant,
            name: &campaign.name,
            scope: campaign.scope.as_str(),
            reviewer: &campaign.reviewer,
            due_at: campaign.due_at,
            auto_revoke_overdue: campaign.auto_revoke_overdue,
            unused_days: campaign.unused_days,
            created_by: &campaign.created_by,
            created_at: campaign.created_at,
            status,
            counts: CountsJson {
                total: counts.total,
                pending: counts.pending,
                kept: counts.kept,
                revoked: counts.revoked,
            },
        }
    }
}

/// An item as the API answers it.
#[derive(Debug, Serialize)]
struct ItemJson {
    id: String,
    kind: &'static str,
    /// Who holds it, `Type::"id"`.
    principal: String,
    /// What is held: a role's uid, or a service account's client id and name.
    entitlement: String,
    role: Option<String>,
    client_id: Option<String>,
    scopes: Vec<String>,
    granted_by: String,
    /// Unix seconds (null when unknown).
    granted_at: Option<i64>,
    grant_reason: String,
    expires_at: Option<i64>,
    reviewer: String,
    usage: UsageJson,
    decision: Option<&'static str>,
    decided_by: Option<String>,
    decided_at: Option<i64>,
    note: Option<String>,
    /// For a revoke: whether the entitlement is gone yet.
    applied: bool,
    /// Undecided past the campaign's due date.
    overdue: bool,
}

#[derive(Debug, Serialize)]
struct UsageJson {
    last_allowed_at: Option<i64>,
    last_decision_id: Option<String>,
    used_through: Option<String>,
    unused_days: Option<i64>,
    unused: bool,
}

fn uid_text(entity_type: &str, id: &str) -> String {
    format!("{entity_type}::{}", Value::String(id.to_owned()))
}

impl ItemJson {
    fn of(campaign: &Campaign, item: &ReviewItem, usage: Usage, now: i64) -> Self {
        let detail: Value = serde_json::from_str(&item.detail).unwrap_or(Value::Null);
        let scopes: Vec<String> = detail
            .get("scopes")
            .and_then(Value::as_array)
            .map(|scopes| {
                scopes
                    .iter()
                    .filter_map(|scope| scope.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let role = item.role.as_ref().map(|(t, id)| uid_text(t, id));
        let entitlement = match (&role, &item.client_id) {
            (Some(role), _) => role.clone(),
            (None, Some(client_id)) => format!(
                "service account {client_id} ({})",
                detail.get("name").and_then(Value::as_str).unwrap_or("")
            ),
            (None, None) => String::new(),
        };
        let decision = item.decision.as_ref();
        ItemJson {
            id: item.item_id.clone(),
            kind: item.kind.as_str(),
            principal: uid_text(&item.principal_type, &item.principal_id),
            entitlement,
            role,
            client_id: item.client_id.clone(),
            scopes,
            granted_by: item.granted_by.clone(),
            granted_at: (item.granted_at > 0).then_some(item.granted_at),
            grant_reason: item.grant_reason.clone(),
            expires_at: item.expires_at,
            reviewer: item.reviewer.clone(),
            usage: UsageJson {
                last_allowed_at: usage.last_allowed_at,
                last_decision_id: usage.last_decision_id,
                used_through: usage.used_through,
                unused_days: usage.unused_days,
                unused: usage.unused,
            },
            decision: decision.map(|made| made.decision.as_str()),
            decided_by: decision.map(|made| made.decided_by.clone()),
            decided_at: decision.map(|made| made.decided_at),
            note: decision.map(|made| made.note.clone()),
            applied: decision.is_some_and(|made| made.applied_at.is_some()),
            overdue: decision.is_none() && now >= campaign.due_at,
        }
    }
}

/// Items as answered, each with its usage evidence (read for all of them at once).
async fn items_json(
    state: &AppState,
    store: &warden_store::Store,
    campaign: &Campaign,
    items: &[ReviewItem],
    now: i64,
) -> Result<Vec<ItemJson>, ApiError> {
    let usage = reviews::evidence(state, store, campaign, items, now)
        .await
        .map_err(store_error)?;
    Ok(items
        .iter()
        .zip(usage)
        .map(|(item, usage)| ItemJson::of(campaign, item, usage, now))
        .collect())
}

/// `POST /v1/admin/tenants/{tenant}/reviews`.
pub async fn create(
    State(state): State<AppState>,
    TenantAdmin { admin, tenant }: TenantAdmin,
    Json(request): Json<CreateRequest>,
) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let now = unix_now();
    let scope: ReviewScope = request.scope.parse().map_err(store_error)?;
    let due_at = match (request.due_at, request.due_in_days) {
        (Some(at), None) => at,
        (None, Some(days)) if (1..=3650).contains(&days) => now + days * 86_400,
        (None, Some(_)) => {
            return Err(ApiError::BadRequest(
                "due_in_days must be 1 to 3650".to_owned(),
            ));
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give due_at (Unix seconds) or due_in_days, one of them".to_owned(),
            ));
        }
    };
    let reviewer = if request.reviewer == "owner" {
        request.reviewer
    } else {
        let pack = std::sync::Arc::clone(&super::snapshot(&state)?.snapshot.pack);
        let (entity_type, id) = parse_uid(&pack, tenant.as_str(), &request.reviewer)?;
        if let Some(schema) = pack.schema()
            && !schema
                .principals()
                .any(|principal| principal.to_string() == entity_type)
        {
            return Err(ApiError::BadRequest(format!(
                "reviewer `{}`: `{entity_type}` is not a principal type of the schema, so nobody could review",
                request.reviewer
            )));
        }
        uid_text(&entity_type, &id)
    };
    let new = NewCampaign {
        name: request.name,
        scope,
        reviewer,
        due_at,
        auto_revoke_overdue: request.auto_revoke_overdue,
        unused_days: request.unused_days,
    };
    let (campaign, items) = reviews::create(&state, store, &tenant, new, &admin.actor(), now)
        .await
        .map_err(review_error)?;
    // Every item of a new campaign is undecided.
    let mut counts = CampaignCounts::default();
    counts.add(None, i64::try_from(items).unwrap_or(i64::MAX));
    let mut response = json_response(&serde_json::json!({
        "campaign": CampaignJson::of(&campaign, counts, now),
    }));
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

/// `GET /v1/admin/tenants/{tenant}/reviews`: the newest campaigns with their counts.
pub async fn list(
    State(state): State<AppState>,
    TenantAdmin { tenant, .. }: TenantAdmin,
) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let campaigns = store
        .review_campaigns(&tenant, LIST_LIMIT)
        .await
        .map_err(store_error)?;
    let ids: Vec<String> = campaigns.iter().map(|c| c.id.clone()).collect();
    let counts = store.review_counts(&ids).await.map_err(store_error)?;
    let now = unix_now();
    let listed: Vec<CampaignJson<'_>> = campaigns
        .iter()
        .map(|campaign| {
            CampaignJson::of(
                campaign,
                counts.get(&campaign.id).copied().unwrap_or_default(),
                now,
            )
        })
        .collect();
    Ok(json_response(&serde_json::json!({ "campaigns": listed })))
}

/// A campaign, its items and their usage evidence.
async fn campaign_with_items(
    state: &AppState,
    tenant: &TenantId,
    id: &str,
) -> Result<(Campaign, CampaignCounts, Vec<ItemJson>), ApiError> {
    let store = store(state)?;
    let campaign = store
        .review_campaign(tenant, id)
        .await
        .map_err(store_error)?;
    let items = store
        .review_items(&campaign.id)
        .await
        .map_err(store_error)?;
    let counts = CampaignCounts::of(&items);
    let items = items_json(state, store, &campaign, &items, unix_now()).await?;
    Ok((campaign, counts, items))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    #[serde(default)]
    after: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
}

/// The most items one page of `GET …/reviews/{id}` holds.
const MAX_PAGE: i64 = 1000;

/// `GET /v1/admin/tenants/{tenant}/reviews/{id}?after=&limit=`: the campaign, its counts, and a
/// page of its items (those numbered after `after`, at most `limit`, default 500) with their
/// usage evidence; `next` is the `after` of the next page (null on the last).
pub async fn show(
    State(state): State<AppState>,
    TenantAdmin { tenant, .. }: TenantAdmin,
    Path((_, id)): Path<(String, String)>,
    Query(page): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let limit = page.limit.unwrap_or(500);
    let after = page.after.unwrap_or(0);
    if !(1..=MAX_PAGE).contains(&limit) || after < 0 {
        return Err(ApiError::BadRequest(format!(
            "limit is 1 to {MAX_PAGE} and after is an item number (0 or more)"
        )));
    }
    let store = store(&state)?;
    let campaign = store
        .review_campaign(&tenant, &id)
        .await
        .map_err(store_error)?;
    let counts = store
        .review_counts(std::slice::from_ref(&campaign.id))
        .await
        .map_err(store_error)?
        .remove(&campaign.id)
        .unwrap_or_default();
    let items = store
        .review_items_page(&campaign.id, after, limit)
        .await
        .map_err(store_error)?;
    let now = unix_now();
    let next = (i64::try_from(items.len()).unwrap_or(i64::MAX) == limit)
        .then(|| {
            items
                .last()
                .and_then(|item| item.item_id.parse::<i64>().ok())
        })
        .flatten();
    let items = items_json(&state, store, &campaign, &items, now).await?;
    Ok(json_response(&serde_json::json!({
        "campaign": CampaignJson::of(&campaign, counts, now),
        "items": items,
        "next": next,
    })))
}

/// Makes a decision, brings this replica up to it, and answers the item as decided.
async fn decided(
    state: &AppState,
    campaign: &Campaign,
    item_id: &str,
    made: ItemDecision,
) -> Result<Response, ApiError> {
    let store = store(state)?;
    let now = made.decided_at;
    let item = reviews::decide(state, store, campaign, item_id, made)
        .await
        .map_err(review_error)?;
    refresh(state, store).await?;
    let item = items_json(state, store, campaign, std::slice::from_ref(&item), now).await?;
    Ok(json_response(&serde_json::json!({ "item": item.first() })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecideRequest {
    decision: String,
    #[serde(default)]
    note: String,
}

/// `POST /v1/admin/tenants/{tenant}/reviews/{id}/items/{item}`: keep or revoke. A revoke is in
/// force on this replica before the answer.
pub async fn decide(
    State(state): State<AppState>,
    TenantAdmin { admin, tenant }: TenantAdmin,
    Path((_, id, item_id)): Path<(String, String, String)>,
    Json(request): Json<DecideRequest>,
) -> Result<Response, ApiError> {
    // A review is a person's judgement, made with a credential or their own token.
    if admin.operator.is_some() {
        return Err(ApiError::Forbidden(
            "an operator's delegated token cannot decide reviews; use an admin credential, or the reviewer's own token on /v1/reviews"
                .to_owned(),
        ));
    }
    let store = store(&state)?;
    let decision = request.decision.parse().map_err(store_error)?;
    let campaign = store
        .review_campaign(&tenant, &id)
        .await
        .map_err(store_error)?;
    let now = unix_now();
    let made = ItemDecision {
        decision,
        decided_by: admin.actor(),
        decided_at: now,
        note: request.note,
        applied_at: None,
    };
    decided(&state, &campaign, &item_id, made).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    #[serde(default)]
    format: Option<String>,
}

/// `GET /v1/admin/tenants/{tenant}/reviews/{id}/report?format=json|csv`.
pub async fn report(
    State(state): State<AppState>,
    TenantAdmin { tenant, .. }: TenantAdmin,
    Path((_, id)): Path<(String, String)>,
    Query(query): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let format = query.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "csv") {
        return Err(ApiError::BadRequest(format!(
            "format `{format}` is not json or csv"
        )));
    }
    let (campaign, counts, items) = campaign_with_items(&state, &tenant, &id).await?;
    let now = unix_now();
    if format == "json" {
        let mut response = json_response(&serde_json::json!({
            "campaign": CampaignJson::of(&campaign, counts, now),
            "generated_at": now,
            "items": items,
        }));
        attach(&mut response, &campaign.id, "json");
        return Ok(response);
    }
    let mut csv = String::from(
        "campaign,item,kind,principal,entitlement,scopes,granted_by,granted_at,grant_reason,expires_at,reviewer,last_allowed_at,last_decision_id,used_through,unused_days,unused,decision,decided_by,decided_at,note,applied\n",
    );
    for item in &items {
        let fields = [
            campaign.id.clone(),
            item.id.clone(),
            item.kind.to_owned(),
            item.principal.clone(),
            item.entitlement.clone(),
            item.scopes.join(" "),
            item.granted_by.clone(),
            optional(item.granted_at),
            item.grant_reason.clone(),
            optional(item.expires_at),
            item.reviewer.clone(),
            optional(item.usage.last_allowed_at),
            item.usage.last_decision_id.clone().unwrap_or_default(),
            item.usage.used_through.clone().unwrap_or_default(),
            optional(item.usage.unused_days),
            item.usage.unused.to_string(),
            item.decision.unwrap_or("").to_owned(),
            item.decided_by.clone().unwrap_or_default(),
            optional(item.decided_at),
            item.note.clone().unwrap_or_default(),
            item.applied.to_string(),
        ];
        let line: Vec<String> = fields.iter().map(|field| csv_field(field)).collect();
        csv.push_str(&line.join(","));
        csv.push('\n');
    }
    let mut response = (StatusCode::OK, csv).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    attach(&mut response, &campaign.id, "csv");
    Ok(response)
}

/// The principal of the request's own bearer token (a reviewer acting for themselves),
/// verified and screened as `/v1/authenticate` does; a refused token is recorded.
async fn reviewer(
    state: &AppState,
    origin: Option<std::net::SocketAddr>,
    authorization: Option<&HeaderValue>,
) -> Result<(TenantId, String), ApiError> {
    let bearer = crate::routes::check::identified(state, "reviews", origin, authorization).await?;
    // A review is a person's judgement: a job acting for them (a delegated token) makes none.
    if bearer.delegation.is_some() {
        return Err(ApiError::Forbidden(
            "a delegated token (a service account acting for a person) cannot review access"
                .to_owned(),
        ));
    }
    let principal = bearer.principal();
    let tenant = principal
        .tenant
        .as_deref()
        .and_then(|tenant| TenantId::parse(tenant).ok())
        .ok_or_else(|| {
            ApiError::Forbidden("the token names no tenant: it reviews nothing".to_owned())
        })?;
    Ok((tenant, uid_text(&principal.entity_type, &principal.id)))
}

/// The most items `GET /v1/reviews` lists.
const REVIEWER_LIMIT: i64 = 500;

/// `GET /v1/reviews`: the undecided items the caller (by their own bearer token) is named as
/// reviewer on, in their tenant's campaigns, soonest due first.
pub async fn assigned(
    State(state): State<AppState>,
    crate::origin::Origin(origin): crate::origin::Origin,
    crate::routes::check::Authorization(authorization): crate::routes::check::Authorization,
) -> Result<Response, ApiError> {
    let (tenant, reviewer) = reviewer(&state, origin, authorization.as_ref()).await?;
    let store = store(&state)?;
    let found = store
        .items_for_reviewer(&tenant, &reviewer, REVIEWER_LIMIT)
        .await
        .map_err(store_error)?;
    let now = unix_now();
    let mut listed = Vec::with_capacity(found.len());
    // The evidence of each campaign's items in one go (the items come grouped by campaign).
    for group in found.chunk_by(|a, b| a.0.id == b.0.id) {
        let Some((campaign, _)) = group.first() else {
            continue;
        };
        let items: Vec<ReviewItem> = group.iter().map(|(_, item)| item.clone()).collect();
        for item in items_json(&state, store, campaign, &items, now).await? {
            listed.push(serde_json::json!({
                "campaign": {"id": campaign.id, "name": campaign.name, "due_at": campaign.due_at},
                "item": item,
            }));
        }
    }
    Ok(json_response(&serde_json::json!({
        "reviewer": reviewer,
        "items": listed,
    })))
}

/// `POST /v1/reviews/{id}/items/{item}`: the named reviewer keeps or revokes an item by their
/// own bearer token. Only the item's reviewer may (others: 404, as if absent), and never on
/// their own entitlement (403). Recorded as decided by `principal:Type::"id"`.
pub async fn decide_as_reviewer(
    State(state): State<AppState>,
    crate::origin::Origin(origin): crate::origin::Origin,
    crate::routes::check::Authorization(authorization): crate::routes::check::Authorization,
    Path((id, item_id)): Path<(String, String)>,
    Json(request): Json<DecideRequest>,
) -> Result<Response, ApiError> {
    let (tenant, reviewer) = reviewer(&state, origin, authorization.as_ref()).await?;
    let store = store(&state)?;
    let decision = request.decision.parse().map_err(store_error)?;
    let not_yours = || {
        ApiError::NotFound(format!(
            "no item `{item_id}` of campaign `{id}` is yours to review"
        ))
    };
    let campaign = store
        .review_campaign(&tenant, &id)
        .await
        .map_err(|_| not_yours())?;
    let item = store
        .review_item(&campaign.id, &item_id)
        .await
        .map_err(|_| not_yours())?;
    if item.reviewer != reviewer {
        return Err(not_yours());
    }
    if uid_text(&item.principal_type, &item.principal_id) == reviewer {
        return Err(ApiError::Forbidden(
            "a reviewer may not decide on their own entitlement".to_owned(),
        ));
    }
    let now = unix_now();
    let made = ItemDecision {
        decision,
        decided_by: format!("principal:{reviewer}"),
        decided_at: now,
        note: request.note,
        applied_at: None,
    };
    decided(&state, &campaign, &item_id, made).await
}

fn attach(response: &mut Response, id: &str, extension: &str) {
    // Campaign ids are `rc_` and hex digits: safe in a header.
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"review-{id}.{extension}\""))
    {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
}

fn optional(value: Option<i64>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}

/// One CSV field (RFC 4180 quoting, and on `;`). A field a spreadsheet would read as a formula
/// (`=`, `+`, `-`, `@` or their full-width forms first, after any leading space; a tab or
/// carriage return first) is prefixed with `'`: principal ids and notes are written by people.
fn csv_field(text: &str) -> String {
    // Spreadsheets skip leading spaces (a no-break space too) and read full-width signs as
    // their ASCII forms.
    let first = text.trim_start().chars().next();
    let formula = first.is_some_and(|first| {
        ['=', '+', '-', '@', '\t', '\r', '＝', '＋', '－', '＠'].contains(&first)
    }) || text.starts_with(['\t', '\r']);
    let text = if formula {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    // Quoted also on `;`: a spreadsheet in a locale that separates cells with it splits there.
    if text.contains([',', ';', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("-1"), "'-1");
        assert_eq!(csv_field("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(csv_field(" =1+1"), "' =1+1");
        assert_eq!(csv_field("\u{a0}=2+2"), "'\u{a0}=2+2");
        assert_eq!(csv_field("＝1+1"), "'＝1+1");
        assert_eq!(csv_field("x;=1+1"), "\"x;=1+1\"");
    }
}
