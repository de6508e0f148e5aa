//! The recipe builder: a `browser.run` recipe written or edited (from a job's, with
//! `?from=JOB_ID`), checked as it is typed by the rules the server applies at submit
//! (`POST /recipes/check`, which changes nothing), then run once as a test job (one
//! attempt, labelled `source=recipe-builder`, opened on its live job page: rows, result,
//! failure screenshot), submitted as a job, or saved as a cron schedule — each through
//! the same services, as the user, as `POST /v1/jobs` and `POST /v1/schedules` would.

use std::collections::BTreeMap;

use axum::{
    Form, Json,
    extract::{Query, State},
    response::{IntoResponse, Redirect, Response},
};
use ferry_core::{FieldError, JobId, api::SubmitJob, recipe::BROWSER_RUN, schedule::ScheduleSpec};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::jobs::may_change;
use super::layout::page;
use super::session::PageUser;
use crate::{app::AppError, http::AppState};

/// What the builder starts from: a recipe against the demo site's reviews.
const STARTER: &str = r#"{"steps": [
  {"goto": {"url": "http://127.0.0.1:8080/site/reviews"}},
  {"extract": {"list": "li.review", "fields": {
    "title": {"selector": "h3"},
    "stars": {"selector": ".stars", "number": true}}}}
]}"#;

#[derive(Deserialize)]
pub struct Start {
    #[serde(default)]
    from: Option<String>,
}

/// The recipe of job `from` (a `browser.run` of the user's tenant), pretty-printed.
async fn recipe_of(queue: &AppState, user: &PageUser, from: &str) -> Option<String> {
    let id = from.parse::<JobId>().ok()?;
    let job = queue.get(&user.principal.tenant, id).await.ok()?;
    (job.kind == BROWSER_RUN)
        .then(|| serde_json::to_string_pretty(&job.payload).ok())
        .flatten()
}

pub async fn show(
    State(queue): State<AppState>,
    user: PageUser,
    Query(q): Query<Start>,
) -> Response {
    let text = match q.from.as_deref() {
        Some(from) => recipe_of(&queue, &user, from).await,
        None => None,
    };
    let text = text.as_deref().unwrap_or(STARTER);
    builder(&user, text, &check(text), None)
}

/// The recipe's problems, each with its JSON path (none: it would be accepted).
fn check(text: &str) -> Result<usize, Vec<FieldError>> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        vec![FieldError::new(
            "payload",
            format!("not JSON: {e} (line {}, column {})", e.line(), e.column()),
        )]
    })?;
    ferry_core::recipe::validate(&value, "payload").map(|r| r.steps.len())
}

fn problems(checked: &Result<usize, Vec<FieldError>>) -> Markup {
    html! {
        div #recipe-problems aria-live="polite" {
            @match checked {
                Ok(steps) => { p.ok { "Valid: " (steps) " steps." } }
                Err(errors) => {
                    ul.problems {
                        @for e in errors { li { code { (e.field) } ": " (e.message) } }
                    }
                }
            }
        }
    }
}

fn builder(
    user: &PageUser,
    text: &str,
    checked: &Result<usize, Vec<FieldError>>,
    refused: Option<&str>,
) -> Response {
    let editor = may_change(user);
    page(
        "Recipe builder",
        Some(user),
        html! {
            h1 { "Recipe builder" }
            p { "A " code { "browser.run" } " recipe: steps a real Chromium performs (see the recipes guide; the JSON Schema is at "
                a href="/v1/recipes/schema" { code { "/v1/recipes/schema" } } "). It is checked as you type by the rules the server applies at submit. "
                "Run it once as a test job to see its rows, its result and, if it fails, its screenshot." }
            @if let Some(message) = refused { p.error role="alert" { (message) } }
            form.recipe method="post" action="/recipes" {
                input type="hidden" name="csrf" value=(user.csrf);
                label { "Recipe (JSON)"
                    textarea #recipe name="recipe" rows="22" spellcheck="false" data-check="/recipes/check" { (text) } }
                (problems(checked))
                div.actions {
                    button type="submit" name="action" value="check" { "Check" }
                    @if editor {
                        " " button type="submit" name="action" value="test" { "Run once as a test" }
                        " " button type="submit" name="action" value="submit" { "Submit as a job" }
                    }
                }
                @if editor {
                    fieldset.schedule {
                        legend { "Save as a schedule" }
                        label { "Name" input type="text" name="name" placeholder="reviews-hourly"; }
                        label { "Cron" input type="text" name="cron" placeholder="0 * * * *"; }
                        label { "Time zone" input type="text" name="timezone" value="UTC"; }
                        button type="submit" name="action" value="schedule" { "Save the schedule" }
                    }
                } @else {
                    p.muted { "Viewers check recipes; editors and admins run and save them." }
                }
            }
        },
    )
    .into_response()
}

#[derive(Deserialize)]
pub struct RecipeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    recipe: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    cron: String,
    #[serde(default)]
    timezone: String,
}

/// `POST /recipes/check`: the problems as JSON, for checking while typing.
pub async fn check_live(_user: PageUser, Form(form): Form<RecipeForm>) -> Json<Value> {
    match check(&form.recipe) {
        Ok(steps) => Json(json!({"ok": true, "steps": steps})),
        Err(errors) => Json(json!({"ok": false, "errors": errors})),
    }
}

pub async fn act(
    State(queue): State<AppState>,
    user: PageUser,
    Form(form): Form<RecipeForm>,
) -> Response {
    let checked = check(&form.recipe);
    if form.action == "check" || checked.is_err() {
        return builder(&user, &form.recipe, &checked, None);
    }
    if let Some(refused) = user.refusal(&queue, &form.csrf, "run or save recipes") {
        return refused;
    }
    let payload: Value = serde_json::from_str(&form.recipe).unwrap_or(Value::Null);
    let mut job = SubmitJob {
        kind: BROWSER_RUN.to_owned(),
        payload,
        ..SubmitJob::default()
    };
    let outcome = match form.action.as_str() {
        "test" | "submit" => {
            if form.action == "test" {
                job.max_attempts = Some(1);
                job.labels = Some(BTreeMap::from([(
                    "source".to_owned(),
                    "recipe-builder".to_owned(),
                )]));
            }
            queue
                .submit_specs(&user.principal, vec![job], false, None)
                .await
                .map(|inserted| match inserted.first() {
                    Some(job) => format!("/jobs/{}", job.job.id),
                    None => "/jobs".to_owned(),
                })
        }
        "schedule" => {
            let spec = ScheduleSpec {
                name: form.name.trim().to_owned(),
                cron: form.cron.trim().to_owned(),
                timezone: match form.timezone.trim() {
                    "" => "UTC".to_owned(),
                    tz => tz.to_owned(),
                },
                job,
                catch_up: true,
            };
            queue
                .schedules()
                .create(&user.principal, spec)
                .await
                .map(|_| "/schedules".to_owned())
        }
        _ => Err(AppError::Invalid(vec![FieldError::new(
            "action",
            "check, test, submit or schedule",
        )])),
    };
    match outcome {
        Ok(to) => Redirect::to(&to).into_response(),
        Err(AppError::Invalid(errors)) => builder(&user, &form.recipe, &Err(errors), None),
        Err(e) => builder(&user, &form.recipe, &checked, Some(&e.to_string())),
    }
}
