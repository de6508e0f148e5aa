//! Leader election on PostgreSQL, bounded in time. Each instance keeps one session of its
//! own (outside the pool) and tries `pg_try_advisory_lock` on it; the instance whose session
//! holds the lock runs maintenance. A lock lives as long as its session, and a session whose
//! network went silent lives on the server until TCP gives up (hours by default), so:
//!
//! - every query on the session runs under a client-side timeout; a leader that cannot
//!   confirm its session for `timeout` steps down and drops it;
//! - the session asks the server to give up on it sooner (`tcp_keepalives_*`,
//!   `tcp_user_timeout`, `statement_timeout`, `idle_in_transaction_session_timeout`);
//! - an instance that finds the lock held by a session silent for `2 × timeout` (the leader
//!   checks its session every tick, so silence means it is cut off or frozen) ends that
//!   session with `pg_terminate_backend`, which frees the lock for the next try.

use std::time::Duration;

use sqlx::{Connection, PgConnection};
use tokio::time::Instant;

use super::{LEADER_LOCK, PostgresStore};

/// This instance's election session.
#[derive(Debug, Default)]
pub struct LeaderSession {
    conn: Option<PgConnection>,
    /// Whether `conn` holds the lock.
    leads: bool,
    /// When the lock was last confirmed on `conn`.
    confirmed: Option<Instant>,
    /// The server refused the session settings: connect without them.
    plain: bool,
}

impl PostgresStore {
    /// Takes or keeps the leader lock; answers whether this instance leads. `timeout`
    /// bounds how long a leader goes on without confirming its session.
    pub async fn lead(&self, s: &mut LeaderSession, timeout: Duration) -> bool {
        // One query may take a third of the budget, so a leader tries about three times.
        let query_timeout = (timeout / 3).max(Duration::from_millis(100));
        if s.conn.is_none() {
            s.leads = false;
            let options = if s.plain {
                self.pool.connect_options().as_ref().clone()
            } else {
                self.session_options(timeout)
            };
            match tokio::time::timeout(timeout, PgConnection::connect_with(&options)).await {
                Ok(Ok(conn)) => s.conn = Some(conn),
                Ok(Err(sqlx::Error::Database(e)))
                    if !s.plain && matches!(e.code().as_deref(), Some("42704" | "08P01")) =>
                {
                    // An older server, or a pooler that passes no startup options: the
                    // session goes without them (the timeouts above still bound it).
                    tracing::warn!(
                        error = %e,
                        "the database refused the leader session's settings; going without"
                    );
                    s.plain = true;
                    return false;
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "cannot open the leader election session");
                    return false;
                }
                Err(_) => return false,
            }
        }
        let Some(conn) = s.conn.as_mut() else {
            return false;
        };
        if s.leads {
            let check = sqlx::query("SELECT 1").execute(&mut *conn);
            match tokio::time::timeout(query_timeout, check).await {
                Ok(Ok(_)) => {
                    s.confirmed = Some(Instant::now());
                    return true;
                }
                Ok(Err(e)) => {
                    // The session, and the lock with it, is gone.
                    tracing::warn!(error = %e, "the leader's database session ended");
                    s.drop_session();
                    return false;
                }
                Err(_) => {
                    if s.confirmed.is_some_and(|at| at.elapsed() < timeout) {
                        return true;
                    }
                    tracing::warn!(
                        timeout_ms = timeout.as_millis() as u64,
                        "the leader cannot confirm its database session; stepping down"
                    );
                    s.drop_session();
                    return false;
                }
            }
        }
        let attempt = sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
            .bind(LEADER_LOCK)
            .fetch_one(&mut *conn);
        match tokio::time::timeout(query_timeout, attempt).await {
            Ok(Ok(true)) => {
                s.leads = true;
                s.confirmed = Some(Instant::now());
                true
            }
            Ok(Ok(false)) => {
                // Held elsewhere: end the holder's session if it has gone silent.
                let fence = end_silent_leader(conn, timeout * 2);
                match tokio::time::timeout(query_timeout, fence).await {
                    Ok(Ok(Some(pid))) => tracing::warn!(
                        pid,
                        silent_ms = (timeout * 2).as_millis() as u64,
                        "ended the session of a leader that went silent"
                    ),
                    Ok(Ok(None)) => {}
                    Ok(Err(_)) | Err(_) => s.drop_session(),
                }
                false
            }
            Ok(Err(_)) | Err(_) => {
                s.drop_session();
                false
            }
        }
    }

    /// The pool's connect options, plus what makes the server give up on a silent session.
    fn session_options(&self, timeout: Duration) -> sqlx::postgres::PgConnectOptions {
        let secs = timeout.as_secs().max(1);
        let options = self.pool.connect_options().as_ref().clone().options([
            ("statement_timeout", format!("{}", timeout.as_millis())),
            (
                "idle_in_transaction_session_timeout",
                format!("{}", timeout.as_millis()),
            ),
            // Probes start after half the budget of silence and end the session after
            // about one more budget: keepalive probes, then the user timeout for data the
            // server sent and never saw acknowledged.
            ("tcp_keepalives_idle", format!("{}", secs.div_ceil(2))),
            ("tcp_keepalives_interval", format!("{}", secs.div_ceil(4))),
            ("tcp_keepalives_count", "3".to_owned()),
            ("tcp_user_timeout", format!("{}", 2 * timeout.as_millis())),
        ]);
        if options.get_application_name().is_some() {
            options
        } else {
            options.application_name("ferry leader election")
        }
    }
}

impl LeaderSession {
    /// Closes the socket without waiting on the server (which may never answer).
    fn drop_session(&mut self) {
        self.conn = None;
        self.leads = false;
        self.confirmed = None;
    }
}

/// Ends the session that holds the leader lock in this database if it has not finished a
/// query for `silent`; answers its process id. The server's clock measures both ends.
async fn end_silent_leader(conn: &mut PgConnection, silent: Duration) -> sqlx::Result<Option<i32>> {
    let (class, object) = (LEADER_LOCK >> 32, LEADER_LOCK & 0xffff_ffff);
    sqlx::query_scalar(
        "WITH silent AS MATERIALIZED ( \
           SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
           WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
             AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid \
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND a.state_change < clock_timestamp() - $3::bigint * interval '1 millisecond') \
         SELECT pid FROM silent WHERE pg_terminate_backend(pid)",
    )
    .bind(class)
    .bind(object)
    .bind(silent.as_millis() as i64)
    .fetch_optional(&mut *conn)
    .await
}
