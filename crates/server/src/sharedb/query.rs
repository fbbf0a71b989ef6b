//! `qf`, `qs`, `qu`: ShareDB's queries. Not served yet: each is answered with a clear
//! error. This is the one place the query engine plugs in (issue 14, item 3): a query
//! over collection `c` is a query over the records `c/*`, checked as
//! [`crate::permission::Action::Query`] and, per result, as a read.

use recordsync_sharedb_protocol::{ErrorCode, QueryRequest, ShareDbError};

use super::connection::Connection;

fn not_yet() -> ShareDbError {
    ShareDbError::new(
        ErrorCode::ERR_DATABASE_METHOD_NOT_IMPLEMENTED,
        "queries are not supported by this recordsync server yet",
    )
}

pub async fn query(_conn: &mut Connection, _query: QueryRequest) -> Result<(), ShareDbError> {
    Err(not_yet())
}

/// `qu`: no query can be running, so there is nothing to end; answered as ShareDB
/// answers an unsubscribe from a query it does not know (the client ignores the reply).
pub async fn unsubscribe(conn: &mut Connection, id: u64) -> Result<(), ShareDbError> {
    conn.session
        .send_text(&format!(r#"{{"a":"qu","id":{id}}}"#));
    Ok(())
}
