//! Engine failures as ShareDB's errors: the codes its client acts on (a rejected op is
//! rolled back, `ERR_OP_ALREADY_SUBMITTED` never reaches it: it is acknowledged), with
//! ShareDB's own messages where ShareDB has one, and recordsync's otherwise.

use recordsync_core::JournalError;
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

/// ShareDB's refusal of a create of a document that exists; `remotely` when the create
/// was built on a version before someone else's create.
pub fn already_created(remotely: bool) -> ShareDbError {
    let message = if remotely {
        "Document was created remotely"
    } else {
        "Invalid op submitted. Document already created"
    };
    ShareDbError::new(ErrorCode::ERR_DOC_ALREADY_CREATED, message)
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
        WriteFailure::Exists { .. } => already_created(false),
        WriteFailure::LifeEnded { .. } => {
            ShareDbError::new(ErrorCode::ERR_DOC_WAS_DELETED, "Document was deleted")
        }
        WriteFailure::Rejected(e) => match &*e {
            // json0's own words, as ShareDB passes on what `type.apply` throws.
            JournalError::Json0(e) => {
                ShareDbError::new(ErrorCode::ERR_OT_OP_NOT_APPLIED, e.to_string())
            }
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
}
