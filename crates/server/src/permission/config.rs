//! The `permission` section of a deepstream-style config.yml:
//!
//! ```yaml
//! permission:
//!   type: config                 # `none` (the default) allows everything
//!   options:
//!     permissions: fileLoad(permissions.yml)   # relative to the config file
//!     maxRuleIterations: 3
//!     cacheEvacuationInterval: 60000           # accepted, not needed
//! ```
//!
//! `options.path: ./permissions.yml` (older deepstream configs) and an inline mapping of
//! rules are read too. The permissions file is validated when the config is read, so a
//! bad rule stops the server from starting with a message naming file, line and rule.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value as Json;

use recordsync_core::valve::{DEFAULT_MAX_RULE_ITERATIONS, Permissions};

use crate::config::ConfigError;

/// The permission settings: the rules (none: everything is allowed) and deepstream's
/// `maxRuleIterations`.
#[derive(Debug, Clone)]
pub struct PermissionConfig {
    rules: Option<Arc<Permissions>>,
    pub max_rule_iterations: u32,
    /// Where the rules came from, for messages.
    pub source: Option<PathBuf>,
}

impl Default for PermissionConfig {
    fn default() -> Self {
        PermissionConfig {
            rules: None,
            max_rule_iterations: DEFAULT_MAX_RULE_ITERATIONS,
            source: None,
        }
    }
}

impl PermissionConfig {
    /// Everything allowed (deepstream's `permission: {type: none}`).
    pub fn open() -> PermissionConfig {
        PermissionConfig::default()
    }

    /// Rules given directly (tests, embedding).
    pub fn with_rules(rules: Permissions) -> PermissionConfig {
        PermissionConfig {
            rules: Some(Arc::new(rules)),
            ..PermissionConfig::default()
        }
    }

    /// Reads and validates a permissions file.
    pub fn from_file(path: &Path) -> Result<(PermissionConfig, Vec<String>), ConfigError> {
        let text = read_text(path)?;
        let (rules, warnings) = Permissions::from_yaml(&text, &path.display().to_string())
            .map_err(|e| ConfigError::Invalid {
                key: "permission".into(),
                reason: e.to_string(),
            })?;
        Ok((
            PermissionConfig {
                rules: Some(Arc::new(rules)),
                max_rule_iterations: DEFAULT_MAX_RULE_ITERATIONS,
                source: Some(path.to_owned()),
            },
            warnings,
        ))
    }

    pub fn is_open(&self) -> bool {
        self.rules.is_none()
    }

    pub fn rules(&self) -> Option<&Permissions> {
        self.rules.as_deref()
    }

    /// Reads the `permission` section of a config document whose file is in `dir`.
    /// `None` when the section is absent.
    pub fn from_config(
        doc: &Json,
        dir: &Path,
    ) -> Result<Option<(PermissionConfig, Vec<String>)>, ConfigError> {
        let Some(section) = doc.get("permission") else {
            return Ok(None);
        };
        let invalid = |key: &str, reason: String| ConfigError::Invalid {
            key: key.into(),
            reason,
        };
        let mut warnings = Vec::new();
        let kind = section.get("type").and_then(Json::as_str);
        if section.get("name").is_some() || section.get("path").is_some() {
            return Err(invalid(
                "permission",
                "custom permission plugins cannot be loaded: use `type: config` with a permissions file, or `type: none`".into(),
            ));
        }
        let options = section.get("options").cloned().unwrap_or(Json::Null);
        if let Some(map) = options.as_object() {
            for key in map.keys() {
                if ![
                    "permissions",
                    "path",
                    "maxRuleIterations",
                    "cacheEvacuationInterval",
                ]
                .contains(&key.as_str())
                {
                    warnings.push(format!(
                        "unknown config key `permission.options.{key}` is ignored"
                    ));
                }
            }
        }
        let kind = match kind {
            Some(k) => k,
            // No type but rules: what deepstream's `config` type reads.
            None if options.get("permissions").is_some() || options.get("path").is_some() => {
                "config"
            }
            None => {
                return Err(invalid(
                    "permission.type",
                    "missing: use `config` (rules from a file) or `none` (allow everything)".into(),
                ));
            }
        };
        let mut config = match kind {
            "none" => PermissionConfig::open(),
            "config" => {
                let (rules, more) = match (options.get("permissions"), options.get("path")) {
                    (Some(Json::String(s)), _) => {
                        load_file(&file_load_path(s, dir).ok_or_else(|| {
                            invalid(
                                "permission.options.permissions",
                                format!(
                                    "expected fileLoad(<file>) or a mapping of rules, got {s:?}"
                                ),
                            )
                        })?)?
                    }
                    (Some(inline @ Json::Object(_)), _) => {
                        let text = inline.to_string();
                        let (rules, warnings) = Permissions::from_yaml(
                            &text,
                            "config (permission.options.permissions)",
                        )
                        .map_err(|e| invalid("permission.options.permissions", e.to_string()))?;
                        (PermissionConfig::with_rules(rules), warnings)
                    }
                    (Some(other), _) => {
                        return Err(invalid(
                            "permission.options.permissions",
                            format!("expected fileLoad(<file>) or a mapping of rules, got {other}"),
                        ));
                    }
                    (None, Some(Json::String(p))) => load_file(&resolve(p, dir))?,
                    (None, _) => {
                        return Err(invalid(
                            "permission.options.permissions",
                            "missing: `type: config` needs `permissions: fileLoad(permissions.yml)`".into(),
                        ));
                    }
                };
                warnings.extend(more);
                rules
            }
            other => {
                return Err(invalid(
                    "permission.type",
                    format!("unknown permission type {other:?}: use `config` or `none`"),
                ));
            }
        };
        if let Some(v) = options.get("maxRuleIterations") {
            let n = v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| {
                    invalid(
                        "permission.options.maxRuleIterations",
                        "expected a whole number".into(),
                    )
                })?;
            if n < 1 {
                return Err(invalid(
                    "permission.options.maxRuleIterations",
                    "Maximum rule iteration has to be at least one".into(),
                ));
            }
            config.max_rule_iterations = u32::try_from(n).unwrap_or(u32::MAX).min(100);
        }
        Ok(Some((config, warnings)))
    }
}

fn load_file(path: &Path) -> Result<(PermissionConfig, Vec<String>), ConfigError> {
    PermissionConfig::from_file(path)
}

/// `fileLoad(x)` → `x` resolved against the config file's directory.
pub fn file_load_path(value: &str, dir: &Path) -> Option<PathBuf> {
    let inner = value.trim().strip_prefix("fileLoad(")?.strip_suffix(')')?;
    let inner = inner.trim().trim_matches(|c| c == '"' || c == '\'');
    Some(resolve(inner, dir))
}

/// A path from the config: absolute as given, relative to the config file's directory.
pub fn resolve(path: &str, dir: &Path) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_owned()
    } else {
        dir.join(p)
    }
}

/// Reads a file loaded from the config, replacing `${NAME}` with the environment
/// variable (empty when unset), as deepstream does.
pub fn read_text(path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::read(path, e))?;
    Ok(substitute_env(&text))
}

/// deepstream's `${NAME}` substitution.
pub fn substitute_env(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start + 2..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        let name = &rest[start + 2..start + 2 + len];
        out.push_str(&std::env::var(name).unwrap_or_default());
        rest = &rest[start + 3 + len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(yaml: &str) -> Json {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn file_load_is_relative_to_the_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("permissions.yml"),
            "record:\n  \"*\":\n    read: true\n  settings/$username:\n    write: \"$username === user.id\"\n",
        )
        .unwrap();
        let d = doc(
            "permission:\n  type: config\n  options:\n    permissions: fileLoad(permissions.yml)\n    maxRuleIterations: 5\n",
        );
        let (config, warnings) = PermissionConfig::from_config(&d, dir.path())
            .unwrap()
            .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(!config.is_open());
        assert_eq!(config.max_rule_iterations, 5);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("p.yml"),
            "record:\n  \"*\":\n    read: \"user.id ===\"\n",
        )
        .unwrap();
        let d = doc("permission:\n  type: config\n  options:\n    permissions: fileLoad(p.yml)\n");
        let err = PermissionConfig::from_config(&d, dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("p.yml:3"), "{err}");
        let d = doc(
            "permission:\n  type: config\n  options:\n    permissions: fileLoad(missing.yml)\n",
        );
        let err = PermissionConfig::from_config(&d, dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.yml"), "{err}");
        let d = doc("permission:\n  type: valve\n");
        let err = PermissionConfig::from_config(&d, dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown permission type"), "{err}");
        let d = doc(
            "permission:\n  type: config\n  options:\n    permissions: fileLoad(p.yml)\n    maxRuleIterations: 0\n",
        );
        assert!(PermissionConfig::from_config(&d, dir.path()).is_err());
    }

    #[test]
    fn none_allows_everything() {
        let d = doc("permission:\n  type: none\n");
        let (config, _) = PermissionConfig::from_config(&d, Path::new("."))
            .unwrap()
            .unwrap();
        assert!(config.is_open());
    }

    #[test]
    fn environment_variables_are_substituted() {
        #[allow(unsafe_code, reason = "set_var is unsafe in edition 2024")]
        // SAFETY: tests in this module do not read this variable concurrently.
        unsafe {
            std::env::set_var("RECORDSYNC_TEST_ROLE", "admin")
        };
        assert_eq!(
            substitute_env("a ${RECORDSYNC_TEST_ROLE} b ${RECORDSYNC_TEST_UNSET_X}"),
            "a admin b "
        );
    }
}
