//! `type: jwt`: a signed JSON Web Token in the auth data.
//!
//! ```yaml
//! auth:
//!   - type: jwt
//!     options:
//!       algorithm: HS256            # HS256 | HS384 | HS512 | RS256 | RS384 | RS512 | ES256 | EdDSA
//!       secret: ${JWT_SECRET}       # for HS*: the shared secret
//!       publicKey: fileLoad(jwt-public.pem)   # for RS*, ES256, EdDSA: a PEM key
//!       issuer: https://auth.example.com      # optional: required `iss`
//!       audience: recordsync                  # optional: required `aud`
//!       tokenField: token           # the auth data field holding the token (default token)
//!       idClaim: sub                # the claim that is the user id (default sub)
//!       serverDataClaim: serverData # the claim for user.data (default: all claims)
//!       clientDataClaim: clientData # the claim sent to the client on login
//!       leeway: 30                  # seconds of clock skew allowed for exp/nbf
//! ```
//!
//! A login without the token field is left to the next auth type; a token that does not
//! verify (signature, expiry, issuer, audience) is refused.

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde_json::{Value as Json, json};

use super::{Authenticator, Context, Identity, Outcome};
use crate::config::ConfigError;
use crate::permission::config::{file_load_path, read_text};

pub struct JwtAuth {
    key: DecodingKey,
    validation: Validation,
    token_field: String,
    id_claim: String,
    server_data_claim: Option<String>,
    client_data_claim: String,
    report_invalid_parameters: bool,
}

impl std::fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuth")
            .field("algorithms", &self.validation.algorithms)
            .field("token_field", &self.token_field)
            .finish_non_exhaustive()
    }
}

/// A key option: `fileLoad(file)` or `file(file)` reads the file, anything else is the key.
fn key_text(value: &str, option: &str, cx: &Context<'_>) -> Result<String, ConfigError> {
    let file = file_load_path(value, cx.dir).or_else(|| {
        let inner = value.trim().strip_prefix("file(")?.strip_suffix(')')?;
        Some(crate::permission::config::resolve(inner.trim(), cx.dir))
    });
    match file {
        Some(path) => read_text(&path).map_err(|e| cx.invalid(option, e.to_string())),
        None => Ok(value.to_owned()),
    }
}

impl JwtAuth {
    pub fn from_options(
        options: &Json,
        cx: &Context<'_>,
        warnings: &mut Vec<String>,
    ) -> Result<JwtAuth, ConfigError> {
        cx.check_keys(
            options,
            &[
                "algorithm",
                "secret",
                "publicKey",
                "issuer",
                "audience",
                "tokenField",
                "idClaim",
                "serverDataClaim",
                "clientDataClaim",
                "leeway",
                "reportInvalidParameters",
            ],
            warnings,
        );
        let string = |key: &str| options.get(key).and_then(Json::as_str);
        let algorithm_name = string("algorithm").unwrap_or(if options.get("secret").is_some() {
            "HS256"
        } else {
            "RS256"
        });
        let algorithm: Algorithm = algorithm_name.parse().map_err(|_| {
            cx.invalid("algorithm", format!("unknown algorithm {algorithm_name:?}"))
        })?;
        let key = match algorithm {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                let secret = string("secret").ok_or_else(|| {
                    cx.invalid(
                        "secret",
                        format!("missing: {algorithm_name} needs a shared secret"),
                    )
                })?;
                let secret = key_text(secret, "secret", cx)?;
                if secret.len() < 32 {
                    warnings.push(format!(
                        "{}.options.secret is shorter than 32 bytes: easy to guess",
                        cx.key
                    ));
                }
                DecodingKey::from_secret(secret.as_bytes())
            }
            _ => {
                let pem = string("publicKey").ok_or_else(|| {
                    cx.invalid(
                        "publicKey",
                        format!("missing: {algorithm_name} needs a PEM public key"),
                    )
                })?;
                let pem = key_text(pem, "publicKey", cx)?;
                let key = match algorithm {
                    Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512 => DecodingKey::from_rsa_pem(pem.as_bytes()),
                    Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem.as_bytes()),
                    Algorithm::EdDSA => DecodingKey::from_ed_pem(pem.as_bytes()),
                    _ => unreachable!("HMAC handled above"),
                };
                key.map_err(|e| {
                    cx.invalid(
                        "publicKey",
                        format!("not a {algorithm_name} public key in PEM form: {e}"),
                    )
                })?
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = cx.number(options, "leeway", 30)?;
        validation.required_spec_claims.clear();
        validation.validate_aud = false;
        if let Some(iss) = string("issuer") {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".into());
        }
        if let Some(aud) = string("audience") {
            validation.set_audience(&[aud]);
            validation.validate_aud = true;
        }
        Ok(JwtAuth {
            key,
            validation,
            token_field: string("tokenField").unwrap_or("token").to_owned(),
            id_claim: string("idClaim").unwrap_or("sub").to_owned(),
            server_data_claim: string("serverDataClaim").map(str::to_owned),
            client_data_claim: string("clientDataClaim").unwrap_or("clientData").to_owned(),
            report_invalid_parameters: cx.report_invalid_parameters(options)?,
        })
    }
}

#[async_trait]
impl Authenticator for JwtAuth {
    async fn authenticate(&self, auth_data: &Json) -> Outcome {
        let Some(token) = auth_data.get(&self.token_field).and_then(Json::as_str) else {
            return Outcome::NotMine;
        };
        let claims = match decode::<Json>(token, &self.key, &self.validation) {
            Ok(data) => data.claims,
            Err(e) => {
                return if self.report_invalid_parameters {
                    Outcome::Invalid {
                        client_data: Some(json!({"error": format!("invalid token: {e}")})),
                    }
                } else {
                    Outcome::NotMine
                };
            }
        };
        let id = match claims.get(&self.id_claim) {
            Some(Json::String(s)) => Some(s.clone()),
            Some(Json::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        if id.is_none() {
            return Outcome::Invalid {
                client_data: Some(
                    json!({"error": format!("the token has no `{}` claim", self.id_claim)}),
                ),
            };
        }
        let server_data = match &self.server_data_claim {
            Some(claim) => claims.get(claim).cloned().unwrap_or(Json::Null),
            None => claims.clone(),
        };
        let client_data = claims
            .get(&self.client_data_claim)
            .cloned()
            .unwrap_or(Json::Null);
        Outcome::Valid(Identity::new(id, server_data, client_data))
    }
}
