//! The API described: an OpenAPI 3.1 document generated from the route table (each
//! route's method, path and access) and its handlers' types (bodies through `schemars`,
//! query parameters from each route's [`FromQuery::PARAMS`], the error body every error
//! answers with), served at `GET /v1/openapi.json` with a reference page at `GET /v1/docs`
//! (Redoc, embedded: no request leaves the server).
//!
//! A handler's extractors and return type say most of an operation; a route's declaration
//! adds its id, summary and the responses its types do not show (a `202`, a `204`, a
//! stream). [`describe`] then adds what its access implies (the bearer scheme, `401` and
//! `403`) and the error answered for anything else.

use std::sync::OnceLock;

use aide::{
    OperationInput, OperationOutput,
    generate::{GenContext, in_context},
    openapi::{
        MediaType, Operation, Parameter, ParameterData, ParameterSchemaOrContent, PathStyle,
        QueryStyle, ReferenceOr, Response, SchemaObject, SecurityScheme, StatusCode, Tag,
    },
    transform::{TransformOpenApi, TransformOperation},
};
use axum::{
    http::header,
    response::{Html, IntoResponse},
};
use ferry_core::api::ApiErrorBody;
use schemars::{JsonSchema, Schema};
use serde_json::json;

use super::{
    ClientAddr, Json, Leased, PathId, Principal, Traced,
    query::{FromQuery, ParamType, Query},
    routes::{Access, Routes},
};
use crate::http::ApiError;

pub fn routes(r: Routes) -> Routes {
    r.get("/v1/openapi.json", Access::Public, document_json, |op| {
        op.id("getOpenApi")
            .summary("This document")
            .description("The API as OpenAPI 3.1: every route, body, parameter and error.")
            .response_with::<200, Json<serde_json::Value>, _>(|r| {
                r.description("The OpenAPI document.")
            })
    })
    .get("/v1/docs", Access::Public, reference, |op| {
        op.id("getApiReference")
            .summary("The API reference")
            .description("This document as a page to read (Redoc, served by Ferry itself).")
    })
}

/// The document, and what the generator could not make sense of (its conflicts between
/// two inputs' answers for one status are expected: the first stands, and their texts are
/// written to fit both).
pub fn build_document() -> (Result<String, String>, Vec<String>) {
    let problems = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen = problems.clone();
    aide::generate::reset_context();
    aide::generate::on_error(move |e| {
        if !matches!(e, aide::Error::InferredResponseConflict(_)) {
            seen.borrow_mut().push(e.to_string());
        }
    });
    let api = super::routes(0).into_document();
    aide::generate::reset_context();
    let text = serde_json::to_string_pretty(&api).map_err(|e| e.to_string());
    let problems = problems.borrow().clone();
    (text, problems)
}

/// The document as served (built once: it depends on nothing but the code).
pub fn document_text() -> Result<&'static str, &'static str> {
    static TEXT: OnceLock<Result<String, String>> = OnceLock::new();
    TEXT.get_or_init(|| {
        let (text, problems) = build_document();
        for problem in problems {
            tracing::warn!(%problem, "the API document");
        }
        text
    })
    .as_deref()
    .map_err(|e| e.as_str())
}

async fn document_json() -> Result<axum::response::Response, ApiError> {
    let text = document_text().map_err(|e| {
        tracing::error!(error = %e, "the API document does not serialise");
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            ferry_core::ErrorCode::Internal,
            "the API document could not be made; see the server log",
        )
    })?;
    Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
}

/// Redoc's bundle shows its maker's logo from a CDN; the page loads nothing from
/// elsewhere, so the image has no source (Redoc then leaves it out).
const REDOC_LOGO: &str = "\"https://cdn.redoc.ly/redoc/logo-mini.svg\"";

async fn reference() -> Html<&'static str> {
    static PAGE: OnceLock<String> = OnceLock::new();
    Html(PAGE.get_or_init(|| {
        aide::redoc::Redoc::new("/v1/openapi.json")
            .with_title("Ferry API")
            .html()
            .replace(REDOC_LOGO, "\"\"")
    }))
}

/// The document's own parts: what it is, how to authenticate, the tags.
pub fn document(api: TransformOpenApi<'_>) -> TransformOpenApi<'_> {
    let mut api = api
        .title("Ferry")
        .version(env!("CARGO_PKG_VERSION"))
        .description(
            "Jobs offloaded from a web application to workers. Clients submit and follow \
             jobs with an API key; workers claim and report them with a worker token. Every \
             error answers `{\"error\": {\"code\", \"message\", \"fields\"?}}` with a stable \
             `code`.",
        )
        .security_scheme(
            "bearer",
            SecurityScheme::Http {
                scheme: "bearer".into(),
                bearer_format: Some("a Ferry API key or worker token".into()),
                description: Some(
                    "`Authorization: Bearer KEY`. API keys (roles viewer, editor, admin) call \
                     the client API; worker tokens call `/v1/worker/...`. The dashboard's \
                     session cookie also works, with `X-CSRF-Token` on changes."
                        .into(),
                ),
                extensions: Default::default(),
            },
        );
    for (name, description) in TAGS {
        api = api.tag(Tag {
            name: (*name).into(),
            description: Some((*description).into()),
            ..Default::default()
        });
    }
    api
}

/// The tags, in the order a reader meets them; a route's is the first segment after
/// `/v1/` (`worker` for the worker protocol).
const TAGS: &[(&str, &str)] = &[
    ("jobs", "Submit, follow, cancel and retry jobs."),
    (
        "batches",
        "Many jobs as one, with a result when all are done.",
    ),
    (
        "events",
        "The event record, as pages or as Server-Sent Events.",
    ),
    ("schedules", "Jobs submitted on a cron schedule."),
    ("datasets", "Rows kept across runs, with what changed."),
    ("webhooks", "Signed deliveries of events to your URL."),
    (
        "sessions",
        "Saved browser sessions (names and ages, never contents).",
    ),
    ("secrets", "The tenant's secrets vault (names only)."),
    ("kinds", "Pausing and resuming kinds of jobs."),
    ("recipes", "The `browser.run` recipe schema."),
    ("worker", "The worker protocol: claim, heartbeat, report."),
    ("workers", "Workers seen lately."),
    ("stats", "Counts by kind and state."),
    ("keys", "The tenant's API keys and worker tokens."),
    ("users", "The tenant's dashboard users."),
    ("auth", "Logging in and out of the dashboard."),
    ("tenant", "The tenant and its egress policy."),
    ("audit", "Who changed what."),
    ("meta", "Health and this document."),
];

fn tag_of(path: &str) -> &'static str {
    let first = path
        .trim_start_matches("/v1/")
        .split('/')
        .next()
        .unwrap_or_default();
    TAGS.iter()
        .map(|(name, _)| *name)
        .find(|name| *name == first)
        .unwrap_or("meta")
}

/// What a route's access and path imply, added to its declared description: its tag, the
/// bearer scheme with `401`/`403` unless it is public, a parameter for each `{name}` in the
/// path its extractors did not describe, and the error answered for anything else.
pub fn describe<'t>(
    op: TransformOperation<'t>,
    path: &str,
    access: Access,
) -> TransformOperation<'t> {
    let mut op = op.tag(tag_of(path));
    if access != Access::Public {
        op = op.security_requirement("bearer");
        let operation = op.inner_mut();
        set_error(
            operation,
            401,
            "No credentials, or a wrong, expired or revoked one (`UNAUTHORIZED`, \
             `KEY_EXPIRED`, `KEY_REVOKED`).",
        );
        set_error(
            operation,
            403,
            &format!(
                "The credential may not do this: the route is for {} (`FORBIDDEN`, \
                 `KIND_NOT_ALLOWED`, `CSRF_FAILED`).",
                access.who()
            ),
        );
    }
    let operation = op.inner_mut();
    path_params(operation, path);
    let responses = operation.responses.get_or_insert_with(Default::default);
    if responses.default.is_none() {
        responses.default = Some(ReferenceOr::Item(in_context(|ctx| {
            error_response(
                ctx,
                "Any other error; `error.code` says which (e.g. `429` `QUOTA_EXCEEDED`, \
                 `503` `UNAVAILABLE` while the database is away).",
            )
        })));
    }
    op
}

/// `status` answering the error body with `description`, unless the route says otherwise.
fn set_error(operation: &mut Operation, status: u16, description: &str) {
    let responses = operation.responses.get_or_insert_with(Default::default);
    let status = StatusCode::Code(status);
    if !responses.responses.contains_key(&status) {
        let response = in_context(|ctx| error_response(ctx, description));
        responses
            .responses
            .insert(status, ReferenceOr::Item(response));
    }
}

/// The error body, `{"error": {...}}`, as a response.
fn error_response(ctx: &mut GenContext, description: &str) -> Response {
    json_response(ctx.schema.subschema_for::<ApiErrorBody>(), description)
}

fn json_response(json_schema: Schema, description: &str) -> Response {
    let mut content = aide::openapi::Response::default().content;
    content.insert(
        "application/json".into(),
        MediaType {
            schema: Some(SchemaObject {
                json_schema,
                external_docs: None,
                example: None,
            }),
            ..Default::default()
        },
    );
    Response {
        description: description.into(),
        content,
        ..Default::default()
    }
}

/// A path parameter for each `{name}` of `path` not yet described (as text).
fn path_params(operation: &mut Operation, path: &str) {
    for name in path
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
    {
        let known = operation.parameters.iter().any(|p| match p {
            ReferenceOr::Item(Parameter::Path { parameter_data, .. }) => {
                parameter_data.name == name
            }
            _ => false,
        });
        if !known {
            operation
                .parameters
                .push(ReferenceOr::Item(Parameter::Path {
                    parameter_data: parameter(name, json!({"type": "string"}), None, true),
                    style: PathStyle::Simple,
                }));
        }
    }
}

fn parameter(
    name: &str,
    schema: serde_json::Value,
    description: Option<&str>,
    required: bool,
) -> ParameterData {
    let json_schema = Schema::try_from(schema).unwrap_or_default();
    ParameterData {
        name: name.into(),
        description: description.map(str::to_owned),
        required,
        deprecated: None,
        format: ParameterSchemaOrContent::Schema(SchemaObject {
            json_schema,
            external_docs: None,
            example: None,
        }),
        example: None,
        examples: Default::default(),
        explode: None,
        extensions: Default::default(),
    }
}

fn param_schema(ty: ParamType) -> serde_json::Value {
    match ty {
        ParamType::Text => json!({"type": "string"}),
        ParamType::Int { min, max } => {
            json!({"type": "integer", "minimum": min, "maximum": max})
        }
        ParamType::Number { min, max } => {
            json!({"type": "number", "minimum": min, "maximum": max})
        }
        ParamType::OneOf(words) => json!({"type": "string", "enum": words}),
        ParamType::Uuid => json!({"type": "string", "format": "uuid"}),
    }
}

fn early_errors(
    ctx: &mut GenContext,
    errors: &[(u16, &str)],
) -> Vec<(Option<StatusCode>, Response)> {
    errors
        .iter()
        .map(|(status, description)| {
            (
                Some(StatusCode::Code(*status)),
                error_response(ctx, description),
            )
        })
        .collect()
}

/// A `400`, whichever input found it (one text serves every route).
const MALFORMED: &str = "The request is malformed: an id in the path is not a UUID, or the \
                         body is not JSON of the expected shape (`BAD_REQUEST`).";

/// A `422`, whichever input found it.
const UNACCEPTABLE: &str = "A value is not acceptable: `fields` names each problem by its \
                            JSON path or query parameter (`VALIDATION_FAILED`, \
                            `INVALID_RECIPE`).";

impl<T: JsonSchema> OperationInput for Json<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        <axum::Json<T> as OperationInput>::operation_input(ctx, operation);
    }

    fn inferred_early_responses(
        ctx: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<StatusCode>, Response)> {
        early_errors(
            ctx,
            &[
                (400, MALFORMED),
                (413, "The body is too large (`PAYLOAD_TOO_LARGE`)."),
                (
                    415,
                    "The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`).",
                ),
                (422, UNACCEPTABLE),
            ],
        )
    }
}

impl<T: JsonSchema> OperationOutput for Json<T> {
    type Inner = T;

    fn operation_response(ctx: &mut GenContext, operation: &mut Operation) -> Option<Response> {
        <axum::Json<T> as OperationOutput>::operation_response(ctx, operation)
    }

    fn inferred_responses(
        ctx: &mut GenContext,
        operation: &mut Operation,
    ) -> Vec<(Option<StatusCode>, Response)> {
        <axum::Json<T> as OperationOutput>::inferred_responses(ctx, operation)
    }
}

/// The error body; the responses it stands for are added by [`describe`] and the inputs.
impl OperationOutput for ApiError {
    type Inner = ApiErrorBody;

    fn operation_response(ctx: &mut GenContext, _: &mut Operation) -> Option<Response> {
        Some(error_response(ctx, "An error."))
    }
}

impl<T: FromQuery> OperationInput for Query<T> {
    fn operation_input(_: &mut GenContext, operation: &mut Operation) {
        for param in T::PARAMS {
            operation
                .parameters
                .push(ReferenceOr::Item(Parameter::Query {
                    parameter_data: parameter(
                        param.name,
                        param_schema(param.ty),
                        Some(param.doc),
                        false,
                    ),
                    allow_reserved: false,
                    style: QueryStyle::Form,
                    allow_empty_value: None,
                }));
        }
    }

    fn inferred_early_responses(
        ctx: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<StatusCode>, Response)> {
        early_errors(ctx, &[(422, UNACCEPTABLE)])
    }
}

impl<T> OperationInput for PathId<T> {
    fn operation_input(_: &mut GenContext, operation: &mut Operation) {
        operation
            .parameters
            .push(ReferenceOr::Item(Parameter::Path {
                parameter_data: parameter(
                    "id",
                    json!({"type": "string", "format": "uuid"}),
                    Some("The id (a UUIDv7)."),
                    true,
                ),
                style: PathStyle::Simple,
            }));
    }

    fn inferred_early_responses(
        ctx: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<StatusCode>, Response)> {
        early_errors(
            ctx,
            &[
                (400, MALFORMED),
                (404, "Nothing with this id in the tenant (`NOT_FOUND`)."),
            ],
        )
    }
}

/// A worker call under a lease: the job's id in the path, the lease in the body.
impl<T: JsonSchema> OperationInput for Leased<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        PathId::<ferry_core::JobId>::operation_input(ctx, operation);
        Json::<T>::operation_input(ctx, operation);
    }

    fn inferred_early_responses(
        ctx: &mut GenContext,
        operation: &mut Operation,
    ) -> Vec<(Option<StatusCode>, Response)> {
        let mut responses = PathId::<ferry_core::JobId>::inferred_early_responses(ctx, operation);
        responses.extend(Json::<T>::inferred_early_responses(ctx, operation));
        responses.extend(early_errors(
            ctx,
            &[(
                409,
                "The lease no longer holds the job; nothing was applied (`LEASE_LOST`).",
            )],
        ));
        responses
    }
}

impl OperationInput for Principal {}
impl OperationInput for Traced {}
impl OperationInput for ClientAddr {}

/// The `200` of an event route also answers `text/event-stream` (Server-Sent Events).
pub fn event_stream(mut op: TransformOperation<'_>) -> TransformOperation<'_> {
    let ok = op
        .inner_mut()
        .responses
        .as_mut()
        .and_then(|r| r.responses.get_mut(&StatusCode::Code(200)));
    if let Some(ReferenceOr::Item(ok)) = ok {
        let stream = json!({
            "type": "string",
            "description": "Server-Sent Events: `id: <event id>` and `data: <event as JSON>` \
                            per event; `id:` alone marks the position; `:` lines keep the \
                            connection alive.",
        });
        ok.content.insert(
            "text/event-stream".into(),
            MediaType {
                schema: Some(SchemaObject {
                    json_schema: Schema::try_from(stream).unwrap_or_default(),
                    external_docs: None,
                    example: None,
                }),
                ..Default::default()
            },
        );
    }
    op
}

/// Links from the `status` answer to the operations `targets`, each taking `param` from
/// `value` (a runtime expression such as `$response.body#/id`): what a generated client or
/// a stateful fuzzer follows from a made resource to what can be done with it.
pub fn links<'t>(
    mut op: TransformOperation<'t>,
    status: u16,
    param: &str,
    value: &str,
    targets: &[&str],
) -> TransformOperation<'t> {
    let answer = op
        .inner_mut()
        .responses
        .as_mut()
        .and_then(|r| r.responses.get_mut(&StatusCode::Code(status)));
    if let Some(ReferenceOr::Item(answer)) = answer {
        for target in targets {
            answer.links.insert(
                (*target).into(),
                ReferenceOr::Item(aide::openapi::Link {
                    description: None,
                    operation: aide::openapi::LinkOperation::OperationId((*target).into()),
                    request_body: None,
                    parameters: [(param.to_owned(), json!(value))].into_iter().collect(),
                    server: None,
                    extensions: Default::default(),
                }),
            );
        }
    }
    op
}

/// A path parameter `name` that is a UUID (one no extractor of the route describes).
pub fn uuid_in_path<'t>(
    mut op: TransformOperation<'t>,
    name: &str,
    description: &str,
) -> TransformOperation<'t> {
    op.inner_mut()
        .parameters
        .push(ReferenceOr::Item(Parameter::Path {
            parameter_data: parameter(
                name,
                json!({"type": "string", "format": "uuid"}),
                Some(description),
                true,
            ),
            style: PathStyle::Simple,
        }));
    op
}

/// A request header the route requires.
pub fn required_header<'t>(
    mut op: TransformOperation<'t>,
    name: &str,
    description: &str,
) -> TransformOperation<'t> {
    op.inner_mut()
        .parameters
        .push(ReferenceOr::Item(Parameter::Header {
            parameter_data: parameter(name, json!({"type": "string"}), Some(description), true),
            style: aide::openapi::HeaderStyle::Simple,
        }));
    op
}

/// The `status` answer as any of `types` (an export, a download): text or bytes.
pub fn media<'t>(
    mut op: TransformOperation<'t>,
    status: u16,
    types: &[&str],
    description: &str,
) -> TransformOperation<'t> {
    let mut answer = Response {
        description: description.into(),
        ..Default::default()
    };
    for media_type in types {
        answer.content.insert(
            (*media_type).into(),
            MediaType {
                schema: Some(SchemaObject {
                    json_schema: Schema::try_from(json!({"type": "string"})).unwrap_or_default(),
                    external_docs: None,
                    example: None,
                }),
                ..Default::default()
            },
        );
    }
    op.inner_mut()
        .responses
        .get_or_insert_with(Default::default)
        .responses
        .insert(StatusCode::Code(status), ReferenceOr::Item(answer));
    op
}

/// The body is a file of any type (sent as is, with its own `Content-Type`).
pub fn any_body(mut op: TransformOperation<'_>) -> TransformOperation<'_> {
    if let Some(ReferenceOr::Item(body)) = op.inner_mut().request_body.as_mut() {
        body.content.clear();
        body.content.insert(
            "*/*".into(),
            MediaType {
                schema: Some(SchemaObject {
                    json_schema: Schema::try_from(json!({"type": "string"})).unwrap_or_default(),
                    external_docs: None,
                    example: None,
                }),
                ..Default::default()
            },
        );
        body.required = true;
    }
    op
}
