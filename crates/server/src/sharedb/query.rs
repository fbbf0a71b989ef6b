//! `qf`, `qs`, `qu`: ShareDB's queries over a collection, the records `c/*` (the
//! language is `recordsync_core::query`'s, answered by the store).
//!
//! Every query is checked first as [`crate::permission::Action::Query`] on the collection
//! name, then each document of its results as a read (see [`query_fetch`]). A fetch
//! query answers `{a: "qf", id, data: [{d, v, data}, ...]}` in the query's order, or with
//! `$count` `{a: "qf", id, data: [], extra: N}`. Live queries are [`query_live`]'s.
//!
//! Files: [`query_fetch`] runs a query once; [`query_live`] runs live queries;
//! [`query_diff`] is arraydiff's diff of result lists; [`query_holds`] which documents
//! the connection follows for its own subscriptions and for its live queries.
//!
//! [`query_fetch`]: super::query_fetch
//! [`query_live`]: super::query_live
//! [`query_diff`]: super::query_diff
//! [`query_holds`]: super::query_holds

use serde::Serialize;
use serde_json::value::RawValue;

use recordsync_sharedb_protocol::{QueryKind, QueryRequest, ShareDbError};

use super::connection::Connection;
use super::query_fetch::{self, Answer};
use super::query_live;

/// The `qf` reply.
#[derive(Serialize)]
struct FetchReply<'a> {
    a: &'static str,
    id: u64,
    data: &'a [Box<RawValue>],
    #[serde(skip_serializing_if = "Option::is_none")]
    extra: Option<u64>,
}

pub async fn query(conn: &mut Connection, request: QueryRequest) -> Result<(), ShareDbError> {
    let query = query_fetch::parse(&request.q)?;
    conn.guard.query(&request.c).await?;
    if request.kind == QueryKind::Subscribe {
        return query_live::subscribe(conn, request, query).await;
    }
    let answer = query_fetch::run(&conn.engine, &conn.guard, &request.c, &query).await?;
    let (data, extra) = match answer {
        Answer::Docs(docs) => (query_fetch::wire_results(&docs, &request.c)?, None),
        Answer::Count(n) => (Vec::new(), Some(n)),
    };
    let reply = FetchReply {
        a: "qf",
        id: request.id,
        data: &data,
        extra,
    };
    let text = serde_json::to_string(&reply).map_err(|e| {
        ShareDbError::new(
            recordsync_sharedb_protocol::ErrorCode::ERR_UNKNOWN_ERROR,
            e.to_string(),
        )
    })?;
    conn.session.send_text(&text);
    Ok(())
}

/// `qu`: ends the live query, if it runs, and answers `{a: "qu", id}` (the client
/// ignores the reply).
pub async fn unsubscribe(conn: &mut Connection, id: u64) -> Result<(), ShareDbError> {
    query_live::end(conn, id).await;
    conn.session
        .send_text(&format!(r#"{{"a":"qu","id":{id}}}"#));
    Ok(())
}
