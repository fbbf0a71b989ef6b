//! A tour of the client: records, subscriptions, acknowledged writes, one-off reads,
//! lists, a provider listening for records, and deletion.
//!
//! Start a server (`recordsync serve`, or deepstream), then:
//!
//! ```text
//! cargo run -p recordsync-client --example quickstart -- ws://127.0.0.1:6020/deepstream
//! ```

use std::error::Error;

use recordsync_client::{Client, StopReason, uid};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:6020/deepstream".into());
    run(&url).await
}

/// The whole tour; a test runs it against both servers.
pub async fn run(url: &str) -> Result<(), Box<dyn Error>> {
    // Two connections, as two programs would have.
    let alice = Client::connect(url).await?;
    let bob = Client::connect(url).await?;

    // A record with a unique name: created as {} when first subscribed.
    let name = format!("quickstart/{}", uid());
    let doc = alice.record(&name);
    doc.when_ready().await?;
    println!("{name} is ready: {}", doc.get("").unwrap_or_default());

    // Bob watches a path: the current value first, then every change.
    let bobs_doc = bob.record(&name);
    let mut titles = bobs_doc.subscribe("title")?;
    println!(
        "bob sees title = {}",
        titles.next().await.unwrap_or_default()
    );

    // Alice writes; the future completes when the server has stored the write.
    doc.set_with_ack("title", "Hello").await?;
    println!(
        "bob sees title = {}",
        titles.next().await.unwrap_or_default()
    );
    doc.set("tags", json!(["rust", "live"]))?;
    doc.set("pets[1].fur.color", "brown")?; // paths create what is missing

    // One-off requests, without subscribing.
    let snapshot = bob.snapshot(&name).await?;
    println!("version {}: {}", snapshot.version, snapshot.data);
    println!("has {name}: {}", bob.has(&name).await?);
    println!("has nothing/here: {}", bob.has("nothing/here").await?);
    bob.set_data_with_ack(&name, "reviewed", true).await?;

    // A list of record names.
    let list = alice.list(&format!("{name}/children"));
    list.when_ready().await?;
    list.add_entry("child/a", None)?;
    list.add_entry("child/b", None)?;
    println!("children: {:?}", list.entries());

    // Bob provides the records matching a pattern, when somebody wants them.
    let pattern = format!("^{name}/weather/.*");
    let mut listening = bob.listen(&pattern).await?;
    let weather = alice.record(&format!("{name}/weather/berlin"));
    let offer = listening.next().await.ok_or("no offer")?;
    let provided = offer.name().to_owned();
    let mut provision = offer.accept();
    bob.set_data(&provided, "celsius", 21)?;
    let mut celsius = weather.subscribe("celsius")?;
    loop {
        match celsius.next().await {
            Some(value) if value == json!(21) => break,
            Some(_) => continue,
            None => return Err("the record went away".into()),
        }
    }
    let mut has_provider = weather.watch_provider();
    has_provider.wait_for(|p| *p).await?;
    println!("{provided}: 21 °C, provided by bob");

    // Alice loses interest: bob is told to stop.
    drop(celsius);
    drop(weather);
    let reason = provision.stopped().await;
    assert_eq!(reason, StopReason::Unsubscribed);
    println!("bob stops providing {provided}");

    // Deleting: every client holding the record is told.
    doc.delete().await?;
    bobs_doc.deleted().await;
    println!("{name} deleted; bob saw it go");
    list.delete().await?;

    alice.close().await;
    bob.close().await;
    Ok(())
}
