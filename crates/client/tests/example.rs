//! The `quickstart` example, run as it is against both servers.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

#[macro_use]
mod support;

#[path = "../examples/quickstart.rs"]
#[allow(dead_code)]
mod quickstart;

use support::{TestServer, within};

async fn the_quickstart_example_runs(server: &TestServer) {
    within("the example", quickstart::run(&server.url()))
        .await
        .unwrap_or_else(|e| panic!("the example failed: {e}"));
}
both!(quickstart_example, the_quickstart_example_runs);
