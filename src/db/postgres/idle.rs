//! The maintenance connection one `Postgres` hands on to the next in the
//! same process: one command opens the server several times (`new` looks,
//! plans, then creates), and each connection costs the server a process.
//! A connection is handed on only for a few seconds: a long-lived process
//! (`provision mcp`) connects afresh rather than trust an old one. The
//! failure of a connection made ahead is handed on too, so that a server
//! that does not answer is waited for once, not twice.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use postgres::Client;

use crate::db::DbError;

const FRESH: Duration = Duration::from_secs(5);

struct Parked {
    /// Which server and settings it was made with.
    server: String,
    at: Instant,
    connection: Result<Client, DbError>,
}

static PARKED: Mutex<Option<Parked>> = Mutex::new(None);

/// Leaves `connection` for the next `take` of the same `server`.
pub fn park(server: String, connection: Result<Client, DbError>) {
    if let Ok(mut parked) = PARKED.lock() {
        *parked = Some(Parked {
            server,
            at: Instant::now(),
            connection,
        });
    }
}

/// The connection (or failure) parked for `server` a moment ago, if any.
pub fn take(server: &str) -> Option<Result<Client, DbError>> {
    let parked = PARKED.lock().ok()?.take()?;
    let usable = match &parked.connection {
        Ok(client) => !client.is_closed(),
        Err(_) => true,
    };
    (parked.server == server && parked.at.elapsed() < FRESH && usable).then_some(parked.connection)
}
