//! The connection URL: libpq's `postgres://` / `postgresql://` form, plus recordsync's own
//! query parameters, which are taken out before the rest goes to tokio-postgres.

use std::time::Duration;

use super::PostgresOptions;

/// recordsync's own URL parameters (libpq does not know them).
const SCHEMA: &str = "schema";
const POOL_SIZE: &str = "pool_size";

/// Splits `url` into the tokio-postgres configuration and recordsync's options (`base`
/// overridden by the URL's `schema` and `pool_size` parameters).
pub(super) fn parse(
    url: &str,
    base: &PostgresOptions,
) -> Result<(tokio_postgres::Config, PostgresOptions), String> {
    if !is_postgres_url(url) {
        return Err("expected a URL starting with postgres:// or postgresql://".into());
    }
    let mut options = base.clone();
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, query),
        None => (url, ""),
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            SCHEMA => options.schema = value.to_owned(),
            POOL_SIZE => {
                options.pool_size = value
                    .parse()
                    .ok()
                    .filter(|&n: &usize| n > 0)
                    .ok_or_else(|| format!("pool_size={value:?} must be a whole number above 0"))?;
            }
            _ => kept.push(pair),
        }
    }
    check_schema(&options.schema)?;
    let rest = if kept.is_empty() {
        head.to_owned()
    } else {
        format!("{head}?{}", kept.join("&"))
    };
    let mut config: tokio_postgres::Config =
        rest.parse().map_err(
            |e: tokio_postgres::Error| match std::error::Error::source(&e) {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            },
        )?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(options.connect_timeout);
    }
    if config.get_application_name().is_none() {
        config.application_name("recordsync");
    }
    Ok((config, options))
}

/// Whether `s` is a PostgreSQL connection URL (what `--storage` accepts for PostgreSQL).
pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// Schema names are used unquoted in SQL, so they are limited to plain identifiers.
fn check_schema(schema: &str) -> Result<(), String> {
    let mut chars = schema.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && schema.len() <= 63
        && !schema.starts_with("pg_");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "schema={schema:?} must be 1 to 63 lower-case letters, digits and '_', \
             starting with a letter or '_' (and not pg_)"
        ))
    }
}

/// `host:port/dbname` (no user, no password): how messages name the database.
pub(super) fn describe(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(h) if h.contains(':') => format!("[{h}]:{port}"),
                Host::Tcp(h) => format!("{h}:{port}"),
                #[cfg(unix)]
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    let hosts = if hosts.is_empty() {
        "localhost:5432".to_owned()
    } else {
        hosts.join(",")
    };
    format!(
        "{hosts}/{}",
        config.get_dbname().unwrap_or("(default database)")
    )
}

/// The URL with any password replaced by `***`, for logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = tail
        .split('&')
        .map(|part| match part.split_once("password=") {
            Some((before, _)) if before.is_empty() || before.ends_with('?') => {
                format!("{before}password=***")
            }
            _ => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&");
    format!("{scheme}://{authority}{tail}")
}

/// Default for [`PostgresOptions::connect_timeout`].
pub(super) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_parameters_are_taken_out_and_the_rest_kept() {
        let base = PostgresOptions::default();
        let (config, options) = parse(
            "postgres://u:pw@db.example:6543/app?schema=rs_one&sslmode=disable&pool_size=3",
            &base,
        )
        .unwrap();
        assert_eq!(options.schema, "rs_one");
        assert_eq!(options.pool_size, 3);
        assert_eq!(config.get_user(), Some("u"));
        assert_eq!(config.get_dbname(), Some("app"));
        assert_eq!(config.get_ports(), &[6543]);
        assert_eq!(config.get_connect_timeout(), Some(&DEFAULT_CONNECT_TIMEOUT));
        assert_eq!(describe(&config), "db.example:6543/app");

        let (_, options) = parse("postgresql://localhost/x", &base).unwrap();
        assert_eq!(options.schema, "recordsync");
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        let base = PostgresOptions::default();
        let err = |url: &str| parse(url, &base).unwrap_err();
        assert!(err("mysql://x").contains("postgres://"));
        assert!(err("postgres://h/db?schema=Bad-Name").contains("schema"));
        assert!(err("postgres://h/db?schema=pg_x").contains("schema"));
        assert!(err("postgres://h/db?pool_size=0").contains("pool_size"));
        assert!(
            err("postgres://h/db?colour=blue").contains("colour"),
            "{}",
            err("postgres://h/db?colour=blue")
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h:1/db?schema=a"),
            "postgres://u:***@h:1/db?schema=a"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_url("postgresql://h/db?password=secret&x=1"),
            "postgresql://h/db?password=***&x=1"
        );
    }
}
