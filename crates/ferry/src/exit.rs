//! The CLI's exit codes, so scripts can tell a failed job from a timeout, a missing job
//! and an unreachable server without reading the message. Documented in
//! docs/operations.md (Exit codes); keep the two in step.

use std::process::ExitCode;

use ferry_client::ClientError;
use ferry_core::ErrorCode;

/// Any other error: bad input, a refused request, a server error.
pub const ERROR: u8 = 1;
// 2 is clap's own: a command line it cannot parse (it exits before any of this runs).
/// The job (or a batch item) finished without completing: failed or cancelled.
pub const JOB_FAILED: u8 = 3;
/// Still unfinished when `--wait`/`--timeout` ran out.
pub const TIMED_OUT: u8 = 4;
/// The job, batch, schedule or dataset does not exist.
pub const NOT_FOUND: u8 = 5;
/// No server answered at the URL(s).
pub const UNREACHABLE: u8 = 6;

/// A wait that ran out before the job or batch finished.
#[derive(Debug)]
pub struct StillWaiting(pub String);

impl std::fmt::Display for StillWaiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StillWaiting {}

/// The exit code for an error the command returned.
pub fn code_for(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if cause.is::<StillWaiting>() {
            return TIMED_OUT;
        }
        if let Some(ferry_server::app::AppError::NotFound(_)) = cause.downcast_ref() {
            return NOT_FOUND;
        }
        if let Some(client) = cause.downcast_ref::<ClientError>() {
            return match client {
                ClientError::Transport(_) => UNREACHABLE,
                ClientError::Api {
                    code: ErrorCode::NotFound,
                    ..
                } => NOT_FOUND,
                _ => ERROR,
            };
        }
    }
    ERROR
}

/// Success, or [`JOB_FAILED`].
pub fn for_outcome(completed: bool) -> ExitCode {
    if completed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(JOB_FAILED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_cause() {
        let not_found = anyhow::Error::new(ClientError::Api {
            status: 404,
            code: ErrorCode::NotFound,
            message: "no such job".into(),
            fields: vec![],
        });
        assert_eq!(code_for(&not_found), NOT_FOUND);
        let refused = anyhow::Error::new(ClientError::Api {
            status: 422,
            code: ErrorCode::ValidationFailed,
            message: "bad".into(),
            fields: vec![],
        });
        assert_eq!(code_for(&refused), ERROR);
        let waited = anyhow::Error::new(StillWaiting("still running".into())).context("job wait");
        assert_eq!(code_for(&waited), TIMED_OUT);
        assert_eq!(code_for(&anyhow::anyhow!("anything else")), ERROR);
        let clap_usage = 2;
        let codes = [
            ERROR,
            clap_usage,
            JOB_FAILED,
            TIMED_OUT,
            NOT_FOUND,
            UNREACHABLE,
        ];
        let distinct: std::collections::BTreeSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), codes.len());
    }
}
