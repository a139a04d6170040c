//! The maintenance connection one `Postgres` hands on to the next in the
//! same process: one command opens the server several times (`new` looks,
//! plans, then creates), and each connection costs the server a process.
//! A connection is handed on only for a few seconds, and only once a
//! trivial statement shows it still works: a server may have closed it
//! meanwhile (`idle_session_timeout`, a restart). The failure of a
//! connection made ahead is handed on too, so that a server that does not
//! answer is waited for once, not twice.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use postgres::Client;

use crate::db::DbError;

const FRESH: Duration = Duration::from_secs(5);
/// How long the statement that checks a parked connection may take.
const CHECK: Duration = Duration::from_secs(1);

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
    let mut parked = PARKED.lock().ok()?.take()?;
    if parked.server != server || parked.at.elapsed() >= FRESH {
        return None;
    }
    if let Ok(client) = &mut parked.connection
        && client.is_valid(CHECK).is_err()
    {
        return None;
    }
    Some(parked.connection)
}
