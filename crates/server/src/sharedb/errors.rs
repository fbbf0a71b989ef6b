//! Engine failures as ShareDB's errors: the codes its client acts on (a rejected op is
//! rolled back, `ERR_OP_ALREADY_SUBMITTED` never reaches it: it is acknowledged), with
//! ShareDB's own messages where ShareDB has one, and recordsync's otherwise.

use recordsync_core::JournalError;
use recordsync_core::json0::{Json0Error, ShapeError};
use recordsync_engine::{EngineError, WriteFailure};
use recordsync_sharedb_protocol::{ErrorCode, ShareDbError};

/// ShareDB's refusal of an op whose version is ahead of the document's.
pub fn newer_than_snapshot() -> ShareDbError {
    ShareDbError::new(
        ErrorCode::ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT,
        "Invalid op submitted. Op version newer than current snapshot",
    )
}

/// ShareDB's refusal of an edit to a document that does not exist.
pub fn does_not_exist() -> ShareDbError {
    ShareDbError::new(ErrorCode::ERR_DOC_DOES_NOT_EXIST, "Document does not exist")
}

/// ShareDB's refusal of a create of a document that exists at ShareDB version `current`,
/// in the words of the check that catches it there: a create built on a version before
/// the current one is transformed against the create it missed ("created remotely"), one
/// at the current version fails to apply ("already exists"), and one sent without a
/// version (a client that never fetched the document) is refused before either.
pub fn already_created(v: Option<u64>, current: u64) -> ShareDbError {
    let message = match v {
        None => "Invalid op submitted. Document already created",
        Some(v) if v < current => "Document was created remotely",
        Some(_) => "Document already exists",
    };
    ShareDbError::new(ErrorCode::ERR_DOC_ALREADY_CREATED, message)
}

/// A json0 op that cannot be read, as ShareDB answers it: an op that is no list, or a
/// component without a path, is badly formed (ShareDB's and json0's own checks); any
/// other fault is json0's "invalid / missing instruction in op" when applied.
pub fn op_shape(e: &ShapeError) -> ShareDbError {
    let inner = match e {
        ShapeError::InComponent { source, .. } => &**source,
        other => other,
    };
    match inner {
        ShapeError::OpNotAList { .. } => ShareDbError::new(
            ErrorCode::ERR_OT_OP_BADLY_FORMED,
            "json0 op must be an array",
        ),
        ShapeError::MissingPath => {
            ShareDbError::new(ErrorCode::ERR_OT_OP_BADLY_FORMED, "Missing path")
        }
        ShapeError::UnknownField(_) | ShapeError::NoAction => ShareDbError::new(
            ErrorCode::ERR_OT_OP_NOT_APPLIED,
            "invalid / missing instruction in op",
        ),
        _ => ShareDbError::new(ErrorCode::ERR_OT_OP_NOT_APPLIED, e.to_string()),
    }
}

/// json0's complaint about an op that does not apply: json0's own words where ShareDB's
/// client may show them (a number or object expected where there is none), recordsync's
/// otherwise.
fn not_applied(e: &Json0Error) -> ShareDbError {
    let message = match e {
        Json0Error::NotANumber { .. } => "Referenced element not a number".to_owned(),
        Json0Error::Missing { .. } => {
            "Referenced element not an object (it was undefined)".to_owned()
        }
        other => other.to_string(),
    };
    ShareDbError::new(ErrorCode::ERR_OT_OP_NOT_APPLIED, message)
}

/// A failed read.
pub fn engine(e: EngineError) -> ShareDbError {
    let code = match &e {
        EngineError::InvalidName(_) => ErrorCode::ERR_MESSAGE_BADLY_FORMED,
        _ => ErrorCode::ERR_UNKNOWN_ERROR,
    };
    ShareDbError::new(code, e.to_string())
}

/// A refused or failed op whose client built it on ShareDB version `v` (`None`: the
/// latest).
pub fn write(failure: WriteFailure, v: Option<u64>) -> ShareDbError {
    match failure {
        WriteFailure::Missing { next_create } if v.is_some_and(|v| v > next_create) => {
            newer_than_snapshot()
        }
        WriteFailure::Missing { .. } => does_not_exist(),
        WriteFailure::InvalidVersion { .. } => newer_than_snapshot(),
        WriteFailure::Exists { version } => already_created(v, version.version + 1),
        WriteFailure::LifeEnded { .. } => {
            ShareDbError::new(ErrorCode::ERR_DOC_WAS_DELETED, "Document was deleted")
        }
        WriteFailure::Rejected(e) => match &*e {
            // json0's own words, as ShareDB passes on what `type.apply` throws.
            JournalError::Json0(e) => not_applied(e),
            other => ShareDbError::new(ErrorCode::ERR_OT_OP_NOT_APPLIED, other.to_string()),
        },
        WriteFailure::Contended { attempts } => ShareDbError::new(
            ErrorCode::ERR_MAX_SUBMIT_RETRIES_EXCEEDED,
            format!("Op submit failed. Exceeded max submit retries of {attempts}"),
        ),
        WriteFailure::Engine(e) => engine(e),
        other => ShareDbError::new(ErrorCode::ERR_UNKNOWN_ERROR, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_documents_are_newer_or_missing_by_the_ops_version() {
        let missing = || WriteFailure::Missing { next_create: 3 };
        assert_eq!(
            write(missing(), Some(4)).code,
            ErrorCode::ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT
        );
        assert_eq!(
            write(missing(), Some(3)).code,
            ErrorCode::ERR_DOC_DOES_NOT_EXIST
        );
        assert_eq!(
            write(missing(), None).code,
            ErrorCode::ERR_DOC_DOES_NOT_EXIST
        );
        assert_eq!(
            write(WriteFailure::LifeEnded { base: 1 }, Some(2)).code,
            ErrorCode::ERR_DOC_WAS_DELETED
        );
    }

    #[test]
    fn already_created_has_sharedbs_three_messages() {
        let message = |v| already_created(v, 3).message;
        assert_eq!(message(Some(2)), "Document was created remotely");
        assert_eq!(message(Some(3)), "Document already exists");
        assert_eq!(
            message(None),
            "Invalid op submitted. Document already created"
        );
    }
}
