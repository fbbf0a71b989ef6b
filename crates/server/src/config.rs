//! Server configuration: defaults, a deepstream-style YAML file, and command-line flags.
//!
//! Where deepstream's config.yml has a key for a setting, the file uses deepstream's key
//! at deepstream's place, so a deepstream deployment's file can be read:
//!
//! | setting                      | file key                                                      | default           |
//! |------------------------------|---------------------------------------------------------------|-------------------|
//! | host                         | `httpServer.options.host`                                     | `127.0.0.1`       |
//! | port                         | `httpServer.options.port`                                     | `6020`            |
//! | health check path            | `httpServer.options.healthCheckPath`                          | `/health-check`   |
//! | Prometheus metrics path      | `metrics.path` (`metrics.enabled: false`: not served)         | `/metrics`        |
//! | binary endpoint path         | `connectionEndpoints[type=ws-binary].options.urlPath`         | `/deepstream`     |
//! | JSON endpoint path           | `connectionEndpoints[type=ws-json].options.urlPath`           | `/deepstream-json`|
//! | max message size (bytes)     | `connectionEndpoints[*].options.maxMessageSize`               | 1 MiB             |
//! | heartbeat interval (ms)      | `connectionEndpoints[*].options.heartbeatInterval`            | 30000             |
//! | unauthenticated timeout (ms) | `connectionEndpoints[*].options.unauthenticatedClientTimeout` | 180000            |
//! | max auth attempts            | `connectionEndpoints[*].options.maxAuthAttempts`              | 3                 |
//! | HTTP API paths               | `connectionEndpoints[type=http].options.postPath`, `getPath`, `authPath` | `/api`, `/api`, `/api/auth` |
//! | HTTP API switches            | `…[type=http].options.enableAuthEndpoint`, `allowAuthData`, `enabled` | `true`       |
//! | HTTP API body limit (bytes)  | `httpServer.options.maxMessageSize` (or the http endpoint's)  | 1 MiB             |
//! | HTTP API request timeout (ms)| `connectionEndpoints[type=http].options.requestTimeout`       | 20000             |
//! | origins allowed (CORS)       | `httpServer.options.allowAllOrigins`, `origins`, `hostUrl` (HTTP API, health check, REST) | all origins |
//! | REST API (`/v1`)             | `rest.enabled`                                                | `true`            |
//! | REST body limit (bytes)      | `rest.maxBodySize`                                            | 1 MiB             |
//! | REST page size (entries)     | `rest.maxPageSize`                                            | 1000              |
//! | web console path             | `console.path` (`console.enabled: false`: not served)         | `/console`        |
//! | listen response timeout (ms) | `listen.responseTimeout`                                      | 500               |
//! | listen rematch interval (ms) | `listen.rematchInterval`                                      | 30000             |
//! | shuffle listeners            | `listen.shuffleProviders`                                     | `true`            |
//! | storage                      | `storage` (`embedded`, `memory`, `postgres://...`)            | `embedded`        |
//! | data directory               | `dataDir`                                                     | `./data`          |
//! | embedded store's cache       | `storageCacheSize` (bytes, or with `KiB`/`MiB`/`GiB`)         | 64 MiB            |
//! | history kept per record      | `history.keepOps` (a count, or `all`)                         | 1000              |
//! | history kept by age (ms)     | `history.keepAge` (none: no age limit)                        | none              |
//! | a milestone every … versions | `history.milestoneEvery`                                      | 100               |
//! | cluster bus                  | `cluster` (`redis://…`, `nats://…`)                           | none (one node)   |
//! | cluster heartbeat (ms)       | `clusterHeartbeatInterval`                                    | 1000              |
//! | outbound queue (messages)    | `outboundQueueLimit`                                          | 65536             |
//! | unacknowledged writes        | `maxPendingWritesPerConnection`                               | 1024              |
//!
//! The `auth` and `permission` sections (deepstream's, with `fileLoad(...)` paths relative
//! to the config file) are read by [`crate::auth::AuthConfig`] and
//! [`crate::permission::PermissionConfig`].
//!
//! Flags given on the command line win over the file.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;
use thiserror::Error;

/// Where records are kept.
#[derive(Clone, PartialEq, Eq)]
pub enum StorageKind {
    /// The crash-safe on-disk store in the data directory (the default).
    Embedded,
    /// Nothing survives a restart; for tests and throwaway use.
    Memory,
    /// A PostgreSQL database shared by any number of nodes: its `postgres://` or
    /// `postgresql://` URL (libpq's parameters, plus `schema` and `pool_size`).
    Postgres(String),
}

/// Never shows a password from a PostgreSQL URL.
impl std::fmt::Debug for StorageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageKind::Embedded => f.write_str("Embedded"),
            StorageKind::Memory => f.write_str("Memory"),
            StorageKind::Postgres(url) => f
                .debug_tuple("Postgres")
                .field(&recordsync_store::postgres::redact_url(url))
                .finish(),
        }
    }
}

impl FromStr for StorageKind {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "embedded" => Ok(StorageKind::Embedded),
            "memory" => Ok(StorageKind::Memory),
            url if recordsync_store::postgres::is_postgres_url(url) => {
                Ok(StorageKind::Postgres(url.to_owned()))
            }
            other => Err(ConfigError::Invalid {
                key: "storage".into(),
                reason: format!(
                    "unknown storage {other:?}: use `embedded`, `memory` or a \
                     postgres://user@host:port/database URL"
                ),
            }),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub data_dir: PathBuf,
    pub storage: StorageKind,
    /// Bytes of the embedded store's page cache, its memory that grows with the data
    /// (see `recordsync_store::embedded::EmbeddedOptions::cache_size`). Other stores
    /// ignore it.
    pub storage_cache_size: usize,
    /// How much of each record's history the store keeps, and its milestones (see
    /// `recordsync_store::History`); every store applies it.
    pub history: recordsync_store::History,
    /// The bus shared with other nodes (`redis://…` or `nats://…`); `None` runs alone.
    pub cluster: Option<String>,
    /// How often cluster nodes say they are alive; three missed intervals and a node is
    /// taken for gone (its listeners stop providing, its subscriptions end).
    pub cluster_heartbeat_interval: Duration,
    pub binary_path: String,
    pub json_path: String,
    /// Where ShareDB clients connect (the `sharedb` endpoint's `urlPath`); `None`: not
    /// served (the endpoint's `enabled: false`).
    pub sharedb_path: Option<String>,
    pub health_check_path: String,
    /// Which browsers' pages may call the server over HTTP (`httpServer.options`
    /// `allowAllOrigins`, `origins`, `hostUrl`): checked on the HTTP API, the health
    /// check and the REST API.
    pub cors: crate::cors::Cors,
    /// deepstream's HTTP API (`POST /api`); `None`: not served (the `http` endpoint's
    /// `enabled: false`).
    pub http_api: Option<crate::http_api::HttpApiConfig>,
    /// The REST API under `/v1`; `None`: not served (`rest.enabled: false`).
    pub rest: Option<crate::rest::RestConfig>,
    /// Where Prometheus scrapes the metrics (`metrics.path`); `None`: not served
    /// (`metrics.enabled: false`). The metrics are recorded either way.
    pub metrics_path: Option<String>,
    /// Where the web console is served (`console.path`); `None`: not served
    /// (`console.enabled: false`, or the REST API, which the console is built on, is off).
    pub console_path: Option<String>,
    /// Whether everything logged about a connection is logged inside a `connection` span
    /// (its `id` and `protocol`), for a log collector to group the lines by. Set by
    /// `serve --log-format json`; off otherwise, as a span is kept for the connection's
    /// whole life (some 400 bytes each, a tenth of an idle connection's memory).
    pub connection_spans: bool,
    /// The largest WebSocket message a client may send, in bytes; a larger one is answered
    /// MAXIMUM_MESSAGE_SIZE_EXCEEDED and its connection closed (1009).
    pub max_message_size: usize,
    pub heartbeat_interval: Duration,
    /// How long a connection may wait before its first login attempt has been answered.
    pub unauthenticated_timeout: Duration,
    pub max_auth_attempts: u32,
    pub listen_response_timeout: Duration,
    pub listen_rematch_interval: Duration,
    /// deepstream's `listen.shuffleProviders`: ask a record's listeners in random order
    /// (`true`) or in the order they registered. Either way, listeners on the node where
    /// the record was first subscribed are asked first.
    pub listen_shuffle_providers: bool,
    pub outbound_queue_limit: usize,
    pub max_pending_writes: usize,
    /// Who may log in (`auth`); default: everyone (`type: none`).
    pub auth: crate::auth::AuthConfig,
    /// What users may do (`permission`); default: everything (`type: none`).
    pub permission: crate::permission::PermissionConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "127.0.0.1".into(),
            port: 6020,
            data_dir: PathBuf::from("./data"),
            storage: StorageKind::Embedded,
            storage_cache_size: recordsync_store::embedded::EmbeddedOptions::DEFAULT_CACHE_SIZE,
            history: recordsync_store::History::default(),
            cluster: None,
            cluster_heartbeat_interval: Duration::from_secs(1),
            binary_path: "/deepstream".into(),
            json_path: "/deepstream-json".into(),
            sharedb_path: Some("/sharedb".into()),
            health_check_path: "/health-check".into(),
            cors: crate::cors::Cors::default(),
            http_api: Some(crate::http_api::HttpApiConfig::default()),
            rest: Some(crate::rest::RestConfig::default()),
            metrics_path: Some("/metrics".into()),
            console_path: Some("/console".into()),
            connection_spans: false,
            max_message_size: 1024 * 1024,
            heartbeat_interval: Duration::from_secs(30),
            unauthenticated_timeout: Duration::from_secs(180),
            max_auth_attempts: 3,
            listen_response_timeout: Duration::from_millis(500),
            listen_rematch_interval: Duration::from_secs(30),
            listen_shuffle_providers: true,
            outbound_queue_limit: 65536,
            max_pending_writes: 1024,
            auth: Default::default(),
            permission: Default::default(),
        }
    }
}

/// A configuration file, or a setting, that could not be used. Each message names the
/// file or key and includes the cause's text; the I/O or YAML parser's error is the
/// [`source`](std::error::Error::source). New kinds may be added: match with a `_` arm.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file the configuration names (the config file itself, a users file, a
    /// permissions file) could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// A file read as YAML is not YAML. The parser's error is behind a `Box<dyn Error>`,
    /// so that its crate (serde-saphyr) is no part of this crate's surface; downcast it
    /// to inspect it.
    #[error("config file {path} is not valid YAML: {source}")]
    Yaml {
        path: String,
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A setting's value is not usable; `reason` says what is expected.
    #[error("config key `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

impl ConfigError {
    /// The file at `path` could not be read.
    pub(crate) fn read(path: &Path, source: std::io::Error) -> Self {
        ConfigError::Read {
            path: path.display().to_string(),
            source,
        }
    }

    /// The file at `path` is not YAML: the parser said `source`.
    pub(crate) fn yaml(
        path: &Path,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        ConfigError::Yaml {
            path: path.display().to_string(),
            source: Box::new(source),
        }
    }
}

/// Top-level keys of a deepstream config.yml that recordsync reads or knowingly ignores
/// (they configure things recordsync does differently or not at all).
const KNOWN_KEYS: &[&str] = &[
    "httpServer",
    "connectionEndpoints",
    "listen",
    "storage",
    "storageCacheSize",
    "history",
    "cluster",
    "clusterHeartbeatInterval",
    "dataDir",
    "outboundQueueLimit",
    "maxPendingWritesPerConnection",
    "metrics",
    "rest",
    "console",
    "serverName",
    "showLogo",
    "logLevel",
    "libDir",
    "exitOnFatalError",
    "dependencyInitialisationTimeout",
    "dependencyInitializationTimeout",
    "enabledFeatures",
    "logger",
    "auth",
    "permission",
    "cache",
    "monitoring",
    "telemetry",
    "plugins",
    "clusterNode",
    "locks",
    "record",
    "rpc",
    "event",
    "presence",
    "subscriptions",
];

impl Config {
    /// Reads a YAML file over the defaults. Unknown keys are returned as warnings.
    pub fn from_file(path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::read(path, e))?;
        // deepstream replaces `${NAME}` with the environment variable's value.
        let text = crate::permission::config::substitute_env(&text);
        let doc: Value = serde_saphyr::from_str(&text).map_err(|e| ConfigError::yaml(path, e))?;
        let mut config = Config::default();
        let mut warnings = config.apply(&doc)?;
        warnings.extend(config.apply_security(&doc, path)?);
        Ok((config, warnings))
    }

    fn apply(&mut self, doc: &Value) -> Result<Vec<String>, ConfigError> {
        let mut warnings = Vec::new();
        let Some(top) = doc.as_object() else {
            if doc.is_null() {
                return Ok(warnings);
            }
            return Err(invalid("(top level)", "expected a mapping of settings"));
        };
        for key in top.keys() {
            if !KNOWN_KEYS.contains(&key.as_str()) {
                warnings.push(format!("unknown config key `{key}` is ignored"));
            }
        }
        if let Some(http) = doc.pointer("/httpServer/options") {
            if let Some(v) = http.get("host") {
                self.host = string(v, "httpServer.options.host")?;
            }
            if let Some(v) = http.get("port") {
                self.port = u16::try_from(uint(v, "httpServer.options.port")?)
                    .map_err(|_| invalid("httpServer.options.port", "must be at most 65535"))?;
            }
            if let Some(v) = http.get("healthCheckPath") {
                self.health_check_path = string(v, "httpServer.options.healthCheckPath")?;
            }
            if let Some(v) = http.get("allowAllOrigins") {
                self.cors.allow_all_origins = boolean(v, "httpServer.options.allowAllOrigins")?;
            }
            if let Some(v) = http.get("origins") {
                self.cors.origins = strings(v, "httpServer.options.origins")?;
            }
            if let Some(v) = http.get("hostUrl") {
                // deepstream checks the host only when set: an empty one is none.
                let host = string(v, "httpServer.options.hostUrl")?;
                self.cors.host_url = (!host.is_empty()).then_some(host);
            }
            if let Some(api) = &mut self.http_api
                && let Some(v) = http.get("maxMessageSize")
            {
                api.max_body = uint(v, "httpServer.options.maxMessageSize")? as usize;
            }
        }
        if let Some(metrics) = doc.get("metrics") {
            if let Some(v) = metrics.get("path") {
                self.metrics_path = Some(string(v, "metrics.path")?);
            }
            if let Some(v) = metrics.get("enabled") {
                if !boolean(v, "metrics.enabled")? {
                    self.metrics_path = None;
                } else if self.metrics_path.is_none() {
                    self.metrics_path = Some("/metrics".into());
                }
            }
        }
        if let Some(rest) = doc.get("rest") {
            self.apply_rest(rest)?;
        }
        self.apply_console(doc.get("console"))?;
        if let Some(endpoints) = doc.get("connectionEndpoints") {
            let list = endpoints
                .as_array()
                .ok_or_else(|| invalid("connectionEndpoints", "expected a list of endpoints"))?;
            for (i, endpoint) in list.iter().enumerate() {
                let key = |k: &str| format!("connectionEndpoints[{i}].{k}");
                let kind = endpoint.get("type").and_then(Value::as_str).unwrap_or("");
                let Some(options) = endpoint.get("options") else {
                    continue;
                };
                if kind == "http" {
                    self.apply_http_endpoint(options, &key)?;
                    continue;
                }
                if kind == "sharedb" {
                    // ShareDB's endpoint: its path, or `enabled: false`. The size limit and
                    // heartbeat are the server's, shared with deepstream's endpoints.
                    let enabled = match options.get("enabled") {
                        None => true,
                        Some(Value::Bool(b)) => *b,
                        Some(_) => {
                            return Err(invalid(&key("options.enabled"), "expected true or false"));
                        }
                    };
                    if let Some(v) = options.get("urlPath") {
                        self.sharedb_path = Some(string(v, &key("options.urlPath"))?);
                    }
                    if !enabled {
                        self.sharedb_path = None;
                    } else if self.sharedb_path.is_none() {
                        self.sharedb_path = Some("/sharedb".into());
                    }
                    continue;
                }
                if let Some(v) = options.get("urlPath") {
                    match kind {
                        "ws-binary" => self.binary_path = string(v, &key("options.urlPath"))?,
                        "ws-json" => self.json_path = string(v, &key("options.urlPath"))?,
                        _ => warnings.push(format!(
                            "endpoint type {kind:?} ({}) is not served",
                            key("type")
                        )),
                    }
                }
                if let Some(v) = options.get("maxMessageSize") {
                    self.max_message_size = uint(v, &key("options.maxMessageSize"))? as usize;
                }
                if let Some(v) = options.get("heartbeatInterval") {
                    self.heartbeat_interval =
                        Duration::from_millis(uint(v, &key("options.heartbeatInterval"))?);
                }
                if let Some(v) = options.get("unauthenticatedClientTimeout") {
                    self.unauthenticated_timeout = Duration::from_millis(uint(
                        v,
                        &key("options.unauthenticatedClientTimeout"),
                    )?);
                }
                if let Some(v) = options.get("maxAuthAttempts") {
                    self.max_auth_attempts = uint(v, &key("options.maxAuthAttempts"))? as u32;
                }
            }
        }
        if let Some(v) = doc.pointer("/listen/responseTimeout") {
            self.listen_response_timeout =
                Duration::from_millis(uint(v, "listen.responseTimeout")?);
        }
        if let Some(v) = doc.pointer("/listen/rematchInterval") {
            self.listen_rematch_interval =
                Duration::from_millis(uint(v, "listen.rematchInterval")?);
        }
        if let Some(v) = doc.pointer("/listen/shuffleProviders") {
            self.listen_shuffle_providers = boolean(v, "listen.shuffleProviders")?;
        }
        if let Some(v) = doc.get("storage") {
            // deepstream's `storage` is a plugin section; only a plain string is ours.
            if let Some(s) = v.as_str() {
                self.storage = s.parse()?;
            } else {
                warnings.push(
                    "deepstream storage plugins are not used: recordsync has its own storage"
                        .into(),
                );
            }
        }
        if let Some(v) = doc.get("storageCacheSize") {
            let size = match v {
                Value::String(text) => parse_size(text),
                other => uint(other, "storageCacheSize")
                    .ok()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| "expected a size in bytes, such as 67108864 or 64MiB".into()),
            };
            self.storage_cache_size =
                size.map_err(|reason| invalid("storageCacheSize", &reason))?;
        }
        if let Some(v) = doc.pointer("/history/keepOps") {
            self.history.keep_ops = match v {
                Value::String(text) => {
                    parse_keep_ops(text).map_err(|reason| invalid("history.keepOps", &reason))?
                }
                other => Some(uint(other, "history.keepOps")?),
            };
        }
        if let Some(v) = doc.pointer("/history/keepAge") {
            self.history.keep_age = Some(Duration::from_millis(uint(v, "history.keepAge")?));
        }
        if let Some(v) = doc.pointer("/history/milestoneEvery") {
            let every = uint(v, "history.milestoneEvery")?;
            if every == 0 {
                return Err(invalid("history.milestoneEvery", "expected 1 or more"));
            }
            self.history.milestone_every = every;
        }
        if let Some(v) = doc.get("cluster") {
            self.cluster = Some(string(v, "cluster")?);
        }
        if let Some(v) = doc.get("clusterHeartbeatInterval") {
            self.cluster_heartbeat_interval =
                Duration::from_millis(uint(v, "clusterHeartbeatInterval")?);
        }
        if let Some(v) = doc.get("dataDir") {
            self.data_dir = PathBuf::from(string(v, "dataDir")?);
        }
        if let Some(v) = doc.get("outboundQueueLimit") {
            self.outbound_queue_limit = uint(v, "outboundQueueLimit")? as usize;
        }
        if let Some(v) = doc.get("maxPendingWritesPerConnection") {
            self.max_pending_writes = uint(v, "maxPendingWritesPerConnection")? as usize;
        }
        self.check()?;
        Ok(warnings)
    }

    /// Reads deepstream's `type: http` endpoint's options (and recordsync's `enabled`).
    /// `logInvalidAuthData` is deepstream's and has no use here: recordsync never logs
    /// auth data.
    fn apply_http_endpoint(
        &mut self,
        options: &Value,
        key: &dyn Fn(&str) -> String,
    ) -> Result<(), ConfigError> {
        let enabled = match options.get("enabled") {
            None => true,
            Some(v) => boolean(v, &key("options.enabled"))?,
        };
        if !enabled {
            self.http_api = None;
            return Ok(());
        }
        let api = self.http_api.get_or_insert_with(Default::default);
        for (name, field) in [
            ("postPath", &mut api.post_path),
            ("getPath", &mut api.get_path),
            ("authPath", &mut api.auth_path),
        ] {
            if let Some(v) = options.get(name) {
                *field = string(v, &key(&format!("options.{name}")))?;
            }
        }
        if let Some(v) = options.get("enableAuthEndpoint") {
            api.enable_auth_endpoint = boolean(v, &key("options.enableAuthEndpoint"))?;
        }
        if let Some(v) = options.get("allowAuthData") {
            api.allow_auth_data = boolean(v, &key("options.allowAuthData"))?;
        }
        if let Some(v) = options.get("maxMessageSize") {
            api.max_body = uint(v, &key("options.maxMessageSize"))? as usize;
        }
        if let Some(v) = options.get("requestTimeout") {
            api.request_timeout = Duration::from_millis(uint(v, &key("options.requestTimeout"))?);
        }
        Ok(())
    }

    /// Reads recordsync's `rest` section: `enabled`, `maxBodySize`, `maxPageSize`.
    fn apply_rest(&mut self, rest: &Value) -> Result<(), ConfigError> {
        if !rest.is_object() {
            return Err(invalid(
                "rest",
                "expected a mapping (enabled, maxBodySize, maxPageSize)",
            ));
        }
        if let Some(v) = rest.get("enabled")
            && !boolean(v, "rest.enabled")?
        {
            self.rest = None;
            return Ok(());
        }
        let config = self.rest.get_or_insert_with(Default::default);
        if let Some(v) = rest.get("maxBodySize") {
            config.max_body = usize::try_from(uint(v, "rest.maxBodySize")?)
                .map_err(|_| invalid("rest.maxBodySize", "too large"))?;
        }
        if let Some(v) = rest.get("maxPageSize") {
            config.max_page = uint(v, "rest.maxPageSize")?;
        }
        Ok(())
    }

    /// Reads recordsync's `console` section: `enabled`, `path`. The console is built on the
    /// REST API: with the REST API off it is off too, unless asked for by
    /// `console.enabled: true`, which is then refused as it could not work.
    fn apply_console(&mut self, console: Option<&Value>) -> Result<(), ConfigError> {
        let Some(console) = console else {
            if self.rest.is_none() {
                self.console_path = None;
            }
            return Ok(());
        };
        if !console.is_object() {
            return Err(invalid("console", "expected a mapping (enabled, path)"));
        }
        if let Some(v) = console.get("path") {
            self.console_path = Some(string(v, "console.path")?);
        }
        let enabled = match console.get("enabled") {
            Some(v) => Some(boolean(v, "console.enabled")?),
            None => None,
        };
        match enabled {
            Some(false) => self.console_path = None,
            Some(true) if self.rest.is_none() => {
                return Err(invalid(
                    "console.enabled",
                    "the console is built on the REST API, which is off (rest.enabled: \
                     false): turn the REST API on, or the console off",
                ));
            }
            _ if self.rest.is_none() => self.console_path = None,
            _ => {
                if self.console_path.is_none() {
                    self.console_path = Some("/console".into());
                }
            }
        }
        Ok(())
    }

    /// Reads the `auth` and `permission` sections; files they load are relative to the
    /// directory of the config file at `path`.
    fn apply_security(&mut self, doc: &Value, path: &Path) -> Result<Vec<String>, ConfigError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut warnings = Vec::new();
        if let Some((auth, w)) = crate::auth::AuthConfig::from_config(doc, dir)? {
            self.auth = auth;
            warnings.extend(w);
        }
        if let Some((permission, w)) = crate::permission::PermissionConfig::from_config(doc, dir)? {
            self.permission = permission;
            warnings.extend(w);
        }
        Ok(warnings)
    }

    /// Rejects values that cannot work.
    pub fn check(&self) -> Result<(), ConfigError> {
        for (key, path) in [
            ("binary endpoint urlPath", &self.binary_path),
            ("JSON endpoint urlPath", &self.json_path),
            ("healthCheckPath", &self.health_check_path),
        ]
        .into_iter()
        .chain(
            self.sharedb_path
                .as_ref()
                .map(|p| ("sharedb endpoint urlPath", p)),
        )
        .chain(self.http_api.iter().flat_map(|api| {
            [
                ("http endpoint postPath", &api.post_path),
                ("http endpoint getPath", &api.get_path),
                ("http endpoint authPath", &api.auth_path),
            ]
        }))
        .chain(self.metrics_path.as_ref().map(|p| ("metrics.path", p)))
        .chain(self.console_path.as_ref().map(|p| ("console.path", p)))
        {
            if !path.starts_with('/') {
                return Err(invalid(key, &format!("{path:?} must start with '/'")));
            }
        }
        if let Some(console) = &self.console_path {
            if console.ends_with('/') {
                return Err(invalid(
                    "console.path",
                    &format!("{console:?}: give the path without a trailing '/', such as /console"),
                ));
            }
            // the console serves its path and everything under it
            let others = [
                ("binary endpoint urlPath", Some(&self.binary_path)),
                ("JSON endpoint urlPath", Some(&self.json_path)),
                ("sharedb endpoint urlPath", self.sharedb_path.as_ref()),
                ("healthCheckPath", Some(&self.health_check_path)),
                ("metrics.path", self.metrics_path.as_ref()),
            ];
            for (key, path) in others {
                if let Some(path) = path
                    && (path == console || path.starts_with(&format!("{console}/")))
                {
                    return Err(invalid(
                        "console.path",
                        &format!("{console:?} would take {path:?}, the {key}: choose another path"),
                    ));
                }
            }
        }
        if !self.cors.allow_all_origins && self.cors.origins.is_empty() {
            return Err(invalid(
                "httpServer.options.origins",
                "allowAllOrigins is false but no origins are listed: no browser could call the HTTP API",
            ));
        }
        if let Some(rest) = &self.rest {
            let paths = [
                ("binary endpoint urlPath", Some(&self.binary_path)),
                ("JSON endpoint urlPath", Some(&self.json_path)),
                ("sharedb endpoint urlPath", self.sharedb_path.as_ref()),
                ("healthCheckPath", Some(&self.health_check_path)),
                ("metrics.path", self.metrics_path.as_ref()),
                ("console.path", self.console_path.as_ref()),
                (
                    "http endpoint postPath",
                    self.http_api.as_ref().map(|a| &a.post_path),
                ),
                (
                    "http endpoint getPath",
                    self.http_api.as_ref().map(|a| &a.get_path),
                ),
                (
                    "http endpoint authPath",
                    self.http_api.as_ref().map(|a| &a.auth_path),
                ),
            ];
            for (key, path) in paths {
                if let Some(path) = path
                    && (path == "/v1" || path.starts_with("/v1/"))
                {
                    return Err(invalid(
                        key,
                        &format!(
                            "{path:?} is under /v1, which the REST API serves: choose another \
                             path, or turn the REST API off (rest.enabled: false)"
                        ),
                    ));
                }
            }
            if rest.max_body < 1024 {
                return Err(invalid("rest.maxBodySize", "must be at least 1024 bytes"));
            }
            if rest.max_page == 0 {
                return Err(invalid("rest.maxPageSize", "must be 1 or more"));
            }
        }
        if self.max_message_size < 1024 {
            return Err(invalid("maxMessageSize", "must be at least 1024 bytes"));
        }
        if let Some(url) = &self.cluster
            && !["redis://", "rediss://", "nats://", "tls://"]
                .iter()
                .any(|p| url.starts_with(p))
        {
            return Err(invalid(
                "cluster",
                &format!("{url:?} is not a bus URL: use redis://host:port or nats://host:port"),
            ));
        }
        if self.cluster_heartbeat_interval.is_zero() {
            return Err(invalid("clusterHeartbeatInterval", "must be more than 0"));
        }
        if self.listen_rematch_interval.is_zero() {
            return Err(invalid("listen.rematchInterval", "must be more than 0"));
        }
        if self.outbound_queue_limit == 0 {
            return Err(invalid("outboundQueueLimit", "must be at least 1"));
        }
        if self.max_pending_writes == 0 {
            return Err(invalid(
                "maxPendingWritesPerConnection",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Reads a size in bytes: a whole number, with an optional unit `B`, `KiB`, `MiB` or
/// `GiB` (powers of 1024; `K`, `M`, `G` mean the same), e.g. `67108864`, `64MiB`, `1 GiB`.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?}; give bytes, or a number with KiB, MiB or GiB"
            ));
        }
    };
    number
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("{text:?} is not a size: give bytes, such as 67108864, or 64MiB"))
}

/// `history.keepOps` / `--keep-history`: a count of entries per record, or `all` (keep
/// everything: history then grows with every write).
pub fn parse_keep_ops(text: &str) -> Result<Option<u64>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("all") {
        return Ok(None);
    }
    text.parse::<u64>()
        .map(Some)
        .map_err(|_| format!("expected a number of entries, such as 1000, or `all`; got {text:?}"))
}

fn invalid(key: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

fn string(v: &Value, key: &str) -> Result<String, ConfigError> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| invalid(key, "expected a string"))
}

fn strings(v: &Value, key: &str) -> Result<Vec<String>, ConfigError> {
    v.as_array()
        .and_then(|list| list.iter().map(|s| s.as_str().map(str::to_owned)).collect())
        .ok_or_else(|| invalid(key, "expected a list of strings"))
}

fn boolean(v: &Value, key: &str) -> Result<bool, ConfigError> {
    v.as_bool()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| invalid(key, "expected true or false"))
}

fn uint(v: &Value, key: &str) -> Result<u64, ConfigError> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| invalid(key, "expected a non-negative whole number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<(Config, Vec<String>), ConfigError> {
        let doc: Value = serde_saphyr::from_str(yaml).unwrap();
        let mut c = Config::default();
        c.apply(&doc).map(|w| (c, w))
    }

    #[test]
    fn reads_deepstream_keys() {
        let (c, warnings) = parse(
            r#"
serverName: UUID
httpServer:
  type: default
  options:
    port: 7070
    host: 0.0.0.0
    healthCheckPath: /health
connectionEndpoints:
  - type: ws-binary
    options:
      urlPath: /ds
      maxMessageSize: 2048
      heartbeatInterval: 1000
      maxAuthAttempts: 5
  - type: ws-json
    options:
      urlPath: /ds-json
listen:
  responseTimeout: 250
  shuffleProviders: false
storage: memory
"#,
        )
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!((c.host.as_str(), c.port), ("0.0.0.0", 7070));
        assert_eq!(
            (c.binary_path.as_str(), c.json_path.as_str()),
            ("/ds", "/ds-json")
        );
        assert_eq!(c.health_check_path, "/health");
        assert_eq!(c.max_message_size, 2048);
        assert_eq!(c.heartbeat_interval, Duration::from_secs(1));
        assert_eq!(c.max_auth_attempts, 5);
        assert_eq!(c.listen_response_timeout, Duration::from_millis(250));
        assert!(!c.listen_shuffle_providers);
        assert!(
            Config::default().listen_shuffle_providers,
            "deepstream's default"
        );
        assert_eq!(c.storage, StorageKind::Memory);
    }

    #[test]
    fn the_metrics_are_served_at_a_path_or_not_at_all() {
        assert_eq!(Config::default().metrics_path.as_deref(), Some("/metrics"));
        let (c, warnings) = parse("metrics:\n  path: /prom\n").unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.metrics_path.as_deref(), Some("/prom"));
        let (c, _) = parse("metrics:\n  enabled: false\n").unwrap();
        assert_eq!(c.metrics_path, None);
        let err = parse("metrics:\n  enabled: maybe\n").unwrap_err();
        assert!(err.to_string().contains("metrics.enabled"), "{err}");
        let err = parse("metrics:\n  path: prom\n").unwrap_err();
        assert!(err.to_string().contains("metrics.path"), "{err}");
    }

    #[test]
    fn the_sharedb_endpoint_is_served_at_a_path_or_not_at_all() {
        assert_eq!(Config::default().sharedb_path.as_deref(), Some("/sharedb"));
        let endpoint = |options: &str| {
            parse(&format!(
                "connectionEndpoints:\n  - type: sharedb\n    options:\n{options}"
            ))
        };
        let (c, warnings) = endpoint("      urlPath: /share\n").unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.sharedb_path.as_deref(), Some("/share"));
        let (c, _) = endpoint("      enabled: false\n").unwrap();
        assert_eq!(c.sharedb_path, None);
        let err = endpoint("      enabled: maybe\n").unwrap_err();
        assert!(err.to_string().contains("options.enabled"), "{err}");
        let err = endpoint("      urlPath: share\n").unwrap_err();
        assert!(
            err.to_string().contains("sharedb endpoint urlPath"),
            "{err}"
        );
    }

    #[test]
    fn the_http_api_reads_deepstreams_http_endpoint_and_http_server_options() {
        let api = Config::default().http_api.unwrap();
        assert_eq!(
            (
                api.post_path.as_str(),
                api.get_path.as_str(),
                api.auth_path.as_str()
            ),
            ("/api", "/api", "/api/auth")
        );
        assert!(api.enable_auth_endpoint && api.allow_auth_data);
        assert!(Config::default().cors.allow_all_origins);
        assert_eq!(api.max_body, 1 << 20);
        assert_eq!(api.request_timeout, Duration::from_secs(20));
        let (c, warnings) = parse(
            r#"
httpServer:
  options:
    allowAllOrigins: false
    origins: ['https://example.com']
    hostUrl: example.com:6020
    maxMessageSize: 4096
connectionEndpoints:
  - type: http
    options:
      allowAuthData: false
      enableAuthEndpoint: false
      authPath: /login
      postPath: /data
      getPath: /data
      logInvalidAuthData: false
      requestTimeout: 1500
"#,
        )
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let api = c.http_api.unwrap();
        assert_eq!(api.post_path, "/data");
        assert_eq!(api.auth_path, "/login");
        assert!(!api.allow_auth_data && !api.enable_auth_endpoint);
        assert_eq!(api.request_timeout, Duration::from_millis(1500));
        assert!(!c.cors.allow_all_origins);
        assert_eq!(c.cors.origins, vec!["https://example.com".to_owned()]);
        assert_eq!(c.cors.host_url.as_deref(), Some("example.com:6020"));
        assert_eq!(api.max_body, 4096);
        assert_eq!(c.max_message_size, 1 << 20, "not the WebSocket limit");
        let (c, _) =
            parse("connectionEndpoints:\n  - type: http\n    options:\n      enabled: false\n")
                .unwrap();
        assert_eq!(c.http_api, None);
        let err =
            parse("connectionEndpoints:\n  - type: http\n    options:\n      postPath: api\n")
                .unwrap_err();
        assert!(err.to_string().contains("http endpoint postPath"), "{err}");
        let err = parse("httpServer:\n  options:\n    allowAllOrigins: false\n").unwrap_err();
        assert!(err.to_string().contains("origins"), "{err}");
    }

    #[test]
    fn the_rest_api_has_its_own_section() {
        assert_eq!(
            Config::default().rest,
            Some(crate::rest::RestConfig {
                max_body: 1024 * 1024,
                max_page: 1000
            })
        );
        let (c, warnings) = parse("rest:\n  maxBodySize: 4096\n  maxPageSize: 50\n").unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            c.rest,
            Some(crate::rest::RestConfig {
                max_body: 4096,
                max_page: 50
            })
        );
        assert_eq!(parse("rest:\n  enabled: false\n").unwrap().0.rest, None);
        // with the REST API off, /v1 is free for others
        let (c, _) = parse("rest:\n  enabled: false\nmetrics:\n  path: /v1/metrics\n").unwrap();
        assert_eq!(c.metrics_path.as_deref(), Some("/v1/metrics"));
        for (yaml, key) in [
            ("rest:\n  maxBodySize: 10\n", "rest.maxBodySize"),
            ("rest:\n  maxPageSize: 0\n", "rest.maxPageSize"),
            ("rest:\n  enabled: maybe\n", "rest.enabled"),
            ("rest: 3\n", "rest"),
            ("metrics:\n  path: /v1/metrics\n", "metrics.path"),
        ] {
            match parse(yaml) {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{yaml}"),
                other => panic!("{yaml}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_console_is_served_at_a_path_while_the_rest_api_is_on() {
        assert_eq!(Config::default().console_path.as_deref(), Some("/console"));
        let (c, warnings) = parse("console:\n  path: /admin\n").unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.console_path.as_deref(), Some("/admin"));
        let (c, _) = parse("console:\n  enabled: false\n").unwrap();
        assert_eq!(c.console_path, None);
        // built on the REST API: off with it, and refused when asked for without it
        let (c, _) = parse("rest:\n  enabled: false\n").unwrap();
        assert_eq!(c.console_path, None);
        for (yaml, key) in [
            (
                "rest:\n  enabled: false\nconsole:\n  enabled: true\n",
                "console.enabled",
            ),
            ("console:\n  enabled: maybe\n", "console.enabled"),
            ("console:\n  path: console\n", "console.path"),
            ("console:\n  path: /console/\n", "console.path"),
            ("console:\n  path: /v1/console\n", "console.path"),
            ("console:\n  path: /metrics\n", "console.path"),
            ("console:\n  path: /deepstream\n", "console.path"),
            ("console: yes\n", "console"),
        ] {
            match parse(yaml) {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{yaml}"),
                other => panic!("{yaml}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_keys_warn_and_bad_values_name_the_key() {
        let (_, warnings) = parse("colour: blue\n").unwrap();
        assert_eq!(warnings, vec!["unknown config key `colour` is ignored"]);
        let err = parse("httpServer:\n  options:\n    port: lots\n").unwrap_err();
        assert!(err.to_string().contains("httpServer.options.port"), "{err}");
        let (c, _) = parse("storage: postgresql://rs:pw@db:5433/app?schema=rs\n").unwrap();
        assert_eq!(
            c.storage,
            StorageKind::Postgres("postgresql://rs:pw@db:5433/app?schema=rs".into())
        );
        assert!(!format!("{c:?}").contains("pw@"), "no password in Debug");
        let err = parse("listen:\n  shuffleProviders: sometimes\n").unwrap_err();
        assert!(err.to_string().contains("listen.shuffleProviders"), "{err}");
        let err = parse("storage: floppy\n").unwrap_err();
        assert!(err.to_string().contains("floppy"), "{err}");
    }

    #[test]
    fn history_is_bounded_by_default_and_keeping_everything_is_explicit() {
        let default = Config::default().history;
        assert_eq!(default.keep_ops, Some(1000));
        assert_eq!(default.milestone_every, 100);
        assert_eq!(default.keep_age, None);
        let (c, _) =
            parse("history:\n  keepOps: all\n  keepAge: 86400000\n  milestoneEvery: 10\n").unwrap();
        assert_eq!(c.history.keep_ops, None);
        assert_eq!(c.history.keep_age, Some(Duration::from_secs(86400)));
        assert_eq!(c.history.milestone_every, 10);
        let (c, _) = parse("history:\n  keepOps: 50\n").unwrap();
        assert_eq!(c.history.keep_ops, Some(50));
        for bad in [
            "history:\n  keepOps: some\n",
            "history:\n  keepOps: -1\n",
            "history:\n  milestoneEvery: 0\n",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.to_string().contains("history."), "{bad}: {err}");
        }
    }

    #[test]
    fn the_cache_size_is_read_in_bytes_or_with_a_unit() {
        assert_eq!(Config::default().storage_cache_size, 64 << 20);
        for (yaml, bytes) in [
            ("storageCacheSize: 1048576\n", 1 << 20),
            ("storageCacheSize: 128MiB\n", 128 << 20),
            ("storageCacheSize: 2 GiB\n", 2 << 30),
            ("storageCacheSize: '512K'\n", 512 << 10),
        ] {
            let (c, warnings) = parse(yaml).unwrap();
            assert!(warnings.is_empty(), "{warnings:?}");
            assert_eq!(c.storage_cache_size, bytes, "{yaml}");
        }
        for bad in [
            "storageCacheSize: lots\n",
            "storageCacheSize: 64TB\n",
            "storageCacheSize: -1\n",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.to_string().contains("storageCacheSize"), "{bad}: {err}");
        }
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert!(parse_size("99999999999999999999G").is_err());
    }
}
