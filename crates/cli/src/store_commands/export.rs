//! `recordsync export`: every record (tombstones too, so a restore keeps their versions
//! and history) from one snapshot of the store ([`Store::export`](recordsync_store::Store::export)),
//! read here or, with `--url`, by the running server (`GET /v1/export`).

use std::io::Write;

use clap::Args;
use recordsync_store::dump_format::{self, Header};
use reqwest::Method;

use super::remote::{self, Remote};
use super::{Source, StoreArgs, StoreCommandError, now_ms};

#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only the records whose names start with PREFIX
    #[arg(long, default_value = "")]
    prefix: String,
    /// Also write each record's journal entries and milestones (its kept history)
    #[arg(long)]
    history: bool,
}

pub async fn run(args: ExportArgs) -> Result<(), StoreCommandError> {
    let store = match args.store.source().await? {
        Source::Store(store) => store,
        Source::Server(remote) => return through(&remote, &args.prefix, args.history).await,
    };
    let mut records = store.export(&args.prefix, args.history).await?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    dump_format::write_header(&mut out, &args.prefix, args.history, now_ms()).map_err(io)?;
    let mut count = 0;
    while let Some(dump) = records.recv().await {
        dump_format::write_record(&mut out, &dump?).map_err(io)?;
        count += 1;
    }
    // Written last: a dump without it was cut short, and import refuses it.
    dump_format::write_trailer(&mut out, count).map_err(io)?;
    out.flush().map_err(io)?;
    Ok(())
}

fn io(source: std::io::Error) -> StoreCommandError {
    StoreCommandError::Io {
        what: "writing the dump to stdout".into(),
        source,
    }
}

/// The server's `GET /v1/export`, which writes the same dump from one snapshot of its
/// store, copied to stdout line by line. A line `{"error":…}` in place of the trailer
/// (the server failed, or its rules refused a record, on the way) is reported as an
/// error; so is a dump that ends without its trailer. Either way stdout holds a dump
/// without a trailer, which `import` refuses.
async fn through(remote: &Remote, prefix: &str, history: bool) -> Result<(), StoreCommandError> {
    let history = if history { "true" } else { "false" };
    let url = remote.url(
        &["v1", "export"],
        &[("prefix", prefix), ("history", history)],
    );
    let mut response = remote.send(Method::GET, url).await?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut pending: Vec<u8> = Vec::new();
    let mut lines = 0u64;
    let mut ended = false;
    loop {
        let chunk = response
            .chunk()
            .await
            .map_err(|source| remote.unreachable(source))?;
        let Some(chunk) = chunk else { break };
        pending.extend_from_slice(&chunk);
        while let Some(at) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=at).collect();
            lines += 1;
            check_line(&line, lines, ended)?;
            ended = line.starts_with(br#"{"end":"#);
            out.write_all(&line).map_err(io)?;
        }
    }
    out.flush().map_err(io)?;
    if !ended || !pending.is_empty() {
        return Err(StoreCommandError::Refused {
            status: 200,
            code: String::new(),
            message: "the server's dump ended before its last line (a lost connection?): \
                      the dump on stdout is incomplete"
                .into(),
        });
    }
    Ok(())
}

/// Line `number` of the server's dump: the header first, nothing after the trailer, and
/// an error line is the server's refusal.
fn check_line(line: &[u8], number: u64, after_end: bool) -> Result<(), StoreCommandError> {
    let text = std::str::from_utf8(line).unwrap_or_default();
    if line.starts_with(br#"{"error":"#) {
        let mut refused = remote::refusal(reqwest::StatusCode::OK, text);
        if let StoreCommandError::Refused {
            status,
            code,
            message,
        } = &mut refused
        {
            // The answer's status was sent before the refusal: its code says which it is.
            *status = if code.starts_with("permission") {
                403
            } else {
                500
            };
            *message = format!(
                "{message}; the export stopped after {} records: the dump on stdout is incomplete",
                number.saturating_sub(2)
            );
        }
        return Err(refused);
    }
    let unexpected = |what: &str| StoreCommandError::Refused {
        status: 200,
        code: String::new(),
        message: format!(
            "line {number} of the server's dump is {what}: is --url a recordsync server?"
        ),
    };
    if after_end {
        return Err(unexpected("after its end"));
    }
    if number == 1 {
        let header: Header = dump_format::parse(text.trim_end())
            .map_err(|e| unexpected(&format!("not a dump header ({e})")))?;
        if header.format != dump_format::FORMAT || header.version != dump_format::VERSION {
            return Err(unexpected(&format!(
                "format {:?} version {}, not {:?} version {}",
                header.format,
                header.version,
                dump_format::FORMAT,
                dump_format::VERSION
            )));
        }
    }
    Ok(())
}
