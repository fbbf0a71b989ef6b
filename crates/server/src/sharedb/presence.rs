//! `p`, `ps`, `pu`, `pr`: ShareDB's presence, as a ShareDB 7 server with `presence: true`
//! serves it (`lib/agent.js`). Presence lives in memory only: the server stores no value,
//! it passes messages on ([`super::presence_hub`] on this node, [`super::presence_bus`]
//! to the others) and remembers, per connection, what it must clear when the connection
//! leaves ([`super::presence_state`]).
//!
//! # Channel presence (`connection.getPresence(ch)`)
//!
//! - `ps {ch, seq}` subscribes; the reply is `{a: "ps", ch, seq}`. The channel's other
//!   subscribers, here and on other nodes, get `{a: "pr", ch}`, and their clients send
//!   their presences again: that is how a late subscriber learns the current values. A
//!   second `ps` of a subscribed channel is answered and asks nobody.
//! - `pu {ch, seq}` unsubscribes (`{a: "pu", ch, seq}`), and, as in ShareDB, clears the
//!   connection's presences in that channel for the others (`p: null`).
//! - `p {ch, id, p, pv}` publishes presence `id`: the reply (the acknowledgement) is the
//!   presence with the sender's `src` added, `{a: "p", ch, src, id, p, pv}`, and the
//!   channel's other subscribers get the same message. `p: null` clears it. A connection
//!   need not subscribe to a channel to publish on it. Connections known by the sender's
//!   `src` never get its messages back.
//! - `pr {ch}` asks the channel's other subscribers to send their presences again
//!   (the reply is `{a: "pr"}`, as ShareDB's).
//! - When a connection closes, each presence it shows in a channel it subscribes to is
//!   cleared for the others (`p: null`, with the presence's last `pv`). Presences in
//!   channels it never subscribed to are not: ShareDB 7 does the same.
//!
//! Unlike ShareDB, a cleared presence is forgotten at once (ShareDB keeps the cleared
//! message and sends `p: null` for it again at disconnect, which changes nothing for a
//! client), so a connection's memory is bounded by the presences it shows now.
//!
//! # Document presence (`connection.getDocPresence(c, d)`)
//!
//! A document's presence is transformed by its type's `transformPresence`, and json0 —
//! the only type here — has none (neither has ot-json0 1.1.0, sharedb 7's). So a `p`
//! naming a type (`t`, which the client sends for document presence) is refused, as
//! ShareDB refuses it, before anything else: `ERR_TYPE_DOES_NOT_SUPPORT_PRESENCE`,
//! `Type does not support presence: <t>`. Its `ps` and `pu` are those of the channel
//! `c.d`, as in ShareDB. A `p` with `c`/`d` but no `t` is passed on as channel presence,
//! its `c`, `d` and `v` included.
//!
//! # Permissions
//!
//! The Valve rules decide presence through the neutral actions, with the channel's name
//! as the record name (`ch`; a document's channel is `c.d`):
//!
//! | request | checks | a rule sees | refused with |
//! |---|---|---|---|
//! | `ps` | read `ch` | `oldData` the record `ch` (null if none) | `ERR_SNAPSHOT_READS_REJECTED` |
//! | `p` | write `ch` | `data` the presence value (null when cleared) | `ERR_OP_SUBMIT_REJECTED` |
//!
//! Subscribing reveals what others show, as a read reveals a record; publishing changes
//! what others see, as a write does, and the rule sees the value as `data`. `pu` and `pr`
//! are not checked (they reveal and change nothing), nor are the clears the server sends
//! for a connection that leaves. Once subscribed, a connection gets the channel's
//! messages without further checks.
//!
//! # Limits
//!
//! A presence value's JSON is at most [`MAX_VALUE_BYTES`], a channel name and a presence
//! id at most [`MAX_NAME_BYTES`] (`ERR_MESSAGE_BADLY_FORMED` otherwise). A connection may
//! send [`RATE_PER_SECOND`] `p`/`ps`/`pr` messages a second (bursts of [`BURST`]),
//! subscribe to [`MAX_CHANNELS`] channels and show [`MAX_PRESENCES`] presences; past
//! these, the request is refused with recordsync's own code `ERR_PRESENCE_LIMIT_EXCEEDED`
//! (ShareDB has none) and nothing is passed on. The connection stays open.

use recordsync_sharedb_protocol::{
    ErrorCode, PresenceMessage, PresenceReply, ShareDbError, presence_request,
    presence_subscription_reply,
};
use serde_json::Value;

use super::connection::Connection;
pub use super::presence_state::{BURST, MAX_CHANNELS, MAX_PRESENCES, RATE_PER_SECOND};
use super::presence_state::{Limit, Published};

/// The largest presence value, as JSON text.
pub const MAX_VALUE_BYTES: usize = 16 * 1024;
/// The longest channel name or presence id.
pub const MAX_NAME_BYTES: usize = 1024;

/// The code of a request refused by a presence limit (not one of ShareDB's).
pub const LIMIT_CODE: &str = "ERR_PRESENCE_LIMIT_EXCEEDED";

/// `p`: publishes (or, with `p` null, clears) a presence.
pub async fn publish(conn: &mut Connection, m: PresenceMessage) -> Result<(), ShareDbError> {
    if let Some(t) = &m.t {
        return Err(ShareDbError::new(
            ErrorCode::ERR_TYPE_DOES_NOT_SUPPORT_PRESENCE,
            format!("Type does not support presence: {t}"),
        ));
    }
    conn.presence.spend().map_err(limit)?;
    check_name("presence channel", &m.ch)?;
    check_name("presence id", &m.id)?;
    let size = serde_json::to_string(&m.p).map_or(usize::MAX, |text| text.len());
    if size > MAX_VALUE_BYTES {
        return Err(ShareDbError::badly_formed(format!(
            "the presence value is {size} bytes of JSON; the limit is {MAX_VALUE_BYTES}"
        )));
    }
    conn.guard.write_value(&m.ch, &m.p).await?;
    let published = Published {
        pv: m.pv,
        c: m.c.clone(),
        d: m.d.clone(),
        v: m.v,
    };
    conn.presence
        .record(&m.ch, &m.id, &m.p, published.clone())
        .map_err(limit)?;
    let text = message(&conn.src, &m.ch, &m.id, &m.p, &published);
    conn.presence
        .hub
        .publish(&m.ch, Some(conn.session.id), &conn.src, &text);
    conn.session.send_text(&text);
    Ok(())
}

/// `ps`: subscribes to channel `ch`, and asks its other subscribers for their presences.
pub async fn subscribe(
    conn: &mut Connection,
    ch: String,
    seq: Option<u64>,
) -> Result<(), ShareDbError> {
    conn.presence.spend().map_err(limit)?;
    check_name("presence channel", &ch)?;
    conn.presence.may_subscribe(&ch).map_err(limit)?;
    conn.guard.read(&ch).await?;
    if !conn.presence.subscribed.contains(ch.as_str()) {
        let hub = conn.presence.hub.clone();
        hub.subscribe(&ch, &conn.session, &conn.src);
        conn.presence.subscribed.insert(ch.as_str().into());
        hub.publish(
            &ch,
            Some(conn.session.id),
            &conn.src,
            &presence_request(&ch),
        );
    }
    conn.session
        .send_text(&presence_subscription_reply("ps", &ch, seq));
    Ok(())
}

/// `pu`: unsubscribes from `ch`, clearing the connection's presences there.
pub fn unsubscribe(
    conn: &mut Connection,
    ch: String,
    seq: Option<u64>,
) -> Result<(), ShareDbError> {
    leave(conn, &ch);
    conn.session
        .send_text(&presence_subscription_reply("pu", &ch, seq));
    Ok(())
}

/// `pr`: asks `ch`'s other subscribers to send their presences again.
pub fn request(conn: &mut Connection, ch: String) -> Result<(), ShareDbError> {
    conn.presence.spend().map_err(limit)?;
    check_name("presence channel", &ch)?;
    conn.presence.hub.publish(
        &ch,
        Some(conn.session.id),
        &conn.src,
        &presence_request(&ch),
    );
    conn.session.send_text(r#"{"a":"pr"}"#);
    Ok(())
}

/// The connection is going away: it leaves every channel it subscribes to.
pub fn close(conn: &mut Connection) {
    let channels: Vec<_> = conn.presence.subscribed.iter().cloned().collect();
    for ch in channels {
        leave(conn, &ch);
    }
}

/// Unsubscribes from `ch` (if subscribed) and clears the presences shown there.
fn leave(conn: &mut Connection, ch: &str) {
    if !conn.presence.subscribed.remove(ch) {
        return;
    }
    let hub = conn.presence.hub.clone();
    hub.unsubscribe(ch, conn.session.id);
    for (id, published) in conn.presence.take_published(ch) {
        let text = message(&conn.src, ch, &id, &Value::Null, &published);
        hub.publish(ch, Some(conn.session.id), &conn.src, &text);
    }
}

/// The presence message the sender is acknowledged with and the others get.
fn message(src: &str, ch: &str, id: &str, p: &Value, published: &Published) -> String {
    PresenceReply {
        a: "p",
        ch,
        src,
        id,
        p,
        pv: published.pv,
        c: published.c.as_deref(),
        d: published.d.as_deref(),
        v: published.v,
    }
    .to_text()
}

fn check_name(what: &str, name: &str) -> Result<(), ShareDbError> {
    if name.len() > MAX_NAME_BYTES {
        return Err(ShareDbError::badly_formed(format!(
            "the {what} is {} bytes long; the limit is {MAX_NAME_BYTES}",
            name.len()
        )));
    }
    Ok(())
}

fn limit(limit: Limit) -> ShareDbError {
    let message = match limit {
        Limit::Rate => format!(
            "too many presence messages: at most {RATE_PER_SECOND} a second (bursts of \
             {BURST}); this one was not passed on"
        ),
        Limit::Channels => {
            format!("a connection may subscribe to at most {MAX_CHANNELS} presence channels")
        }
        Limit::Presences => format!(
            "a connection may show at most {MAX_PRESENCES} presences at once: clear some first"
        ),
    };
    ShareDbError::new(ErrorCode::Other(LIMIT_CODE.to_owned()), message)
}
