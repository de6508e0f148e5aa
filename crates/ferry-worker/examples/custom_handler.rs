//! A worker with a custom handler: `document.preprocess.v1` splits a text into
//! paragraphs, streams each paragraph's statistics as a partial result, reports
//! progress, and returns totals. `post.generate` and `post.publish` are a chain (the
//! README's tour): submitted with `then`, the publish job gets the generated post as its
//! `input`, beside its own payload.
//!
//! Run a server (`ferry serve`), then:
//!
//! ```sh
//! FERRY_SERVER_URL=http://127.0.0.1:7878 FERRY_WORKER_TOKEN=$(cat ferry-data/worker-token) \
//!     cargo run -p ferry-worker --example custom_handler
//! ferry job submit document.preprocess.v1 --payload '{"text": "One two.\n\nThree."}' --wait 10
//! ferry job submit post.generate --payload '{"topic": "ferries"}' --then '[{"kind": "post.publish"}]'
//! ```

use ferry_core::Secret;
use ferry_worker::{Handler, HandlerError, JobContext, Registry, Worker, WorkerConfig};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

#[derive(Deserialize)]
struct Document {
    text: String,
}

struct Preprocess;

#[async_trait::async_trait]
impl Handler for Preprocess {
    async fn run(&self, ctx: JobContext) -> Result<Value, HandlerError> {
        // A payload that does not fit is a non-retryable INVALID_PAYLOAD.
        let doc: Document = ctx.payload_as()?;
        let paragraphs: Vec<&str> = doc
            .text
            .split("\n\n")
            .filter(|p| !p.trim().is_empty())
            .collect();
        let total = paragraphs.len() as u64;
        let mut words = 0;
        for (i, paragraph) in paragraphs.iter().enumerate() {
            if ctx.is_cancelled() {
                return Err(HandlerError::retryable(
                    "STOPPED",
                    "stopped between paragraphs",
                ));
            }
            let n = paragraph.split_whitespace().count();
            words += n;
            ctx.push_items(vec![json!({"paragraph": i, "words": n})])
                .await;
            ctx.progress(Some(i as u64 + 1), Some(total), None).await;
        }
        Ok(json!({"paragraphs": total, "words": words}))
    }
}

/// Writes a post about `topic`.
struct Generate;

#[async_trait::async_trait]
impl Handler for Generate {
    async fn run(&self, ctx: JobContext) -> Result<Value, HandlerError> {
        let topic = ctx.payload["topic"].as_str().unwrap_or("nothing");
        Ok(json!({"title": format!("All about {topic}"), "body": "…"}))
    }
}

/// Publishes the post its parent generated: the parent's result is `ctx.input`.
struct Publish;

#[async_trait::async_trait]
impl Handler for Publish {
    async fn run(&self, ctx: JobContext) -> Result<Value, HandlerError> {
        let Some(post) = &ctx.input else {
            return Err(HandlerError::fatal(
                "NO_INPUT",
                "post.publish runs chained after post.generate",
            ));
        };
        Ok(json!({"published": post["title"]}))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("FERRY_SERVER_URL").unwrap_or_else(|_| "http://127.0.0.1:7878".into());
    let token = std::env::var("FERRY_WORKER_TOKEN").map_err(|_| "set FERRY_WORKER_TOKEN")?;
    let mut registry = Registry::new();
    registry.register("document.preprocess.v1", Preprocess)?;
    registry.register("post.generate", Generate)?;
    registry.register("post.publish", Publish)?;
    let worker = Worker::new(
        ferry_client::Client::new(&url, Secret::new(token))?,
        registry,
        WorkerConfig::default(),
    );
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_signal.cancel();
    });
    worker.run(stop).await?;
    Ok(())
}
